"""The sanity table (suite.studies.sanity): every anchor's log loads and its recipe resolves at the
logged budget, logged points map onto our validation steps, the verdict follows the rule
its header states, and the committed table is what the committed records give. No
training: seconds."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from suite.cli.main import main
from suite.core.build import resolve
from suite.core.registry import SuiteError
from suite.studies import sanity, sanity_report


@pytest.mark.parametrize("name", list(sanity.ANCHORS))
def test_every_anchor_resolves_at_its_logged_budget(name):
    anchor = sanity.ANCHORS[name]
    log = sanity.load_log(name, anchor.points)
    assert len(log) == anchor.points and log.metric.nunique() == 1
    cells = sanity.configs([name])
    assert [cfg.seed for _, cfg in cells] == list(anchor.seeds)
    for _, cfg in cells:
        assert cfg.recipe == name
        resolve(cfg)
    kind, interval, steps = sanity.validation_steps(name, anchor)
    if kind == "epoch":
        assert cells[0][1].epochs == anchor.points and steps == {float(p): p for p in range(1, anchor.points + 1)}
    else:
        assert cells[0][1].steps == max(steps.values()) and cells[0][1].eval_every == interval


def test_iteration_points_map_onto_our_validation_steps():
    # LEM's adding log validates after the step of iterations 0, 100, ... (after 1, 101, ... steps)
    kind, interval, steps = sanity.validation_steps("lem-adding-T2000", sanity.ANCHORS["lem-adding-T2000"])
    assert (kind, interval) == ("iteration", 100)
    assert 1.0 not in steps and steps[101.0] == 100 and steps[2401.0] == 2400
    kind, interval, steps = sanity.validation_steps("indrnn-smnist", sanity.ANCHORS["indrnn-smnist"])
    assert (kind, interval, steps) == ("iteration", 1700, {1700.0: 1700, 3400.0: 3400, 5100.0: 5100})


def _frame(rows):
    return sanity._verdicts(pd.DataFrame(rows, columns=["anchor", "point_kind", "point", "metric", "theirs",
                                                        "ours_seeds"]))


def test_verdict_rule_and_borrowed_spread():
    ref = [(sanity.REFERENCE, "epoch", e, "accuracy", 90.0, [90.0, 92.0, 94.0]) for e in (1.0, 2.0, 3.0)]
    frame = _frame(ref + [
        ("cornn-smnist", "epoch", 2.0, "accuracy", 60.0, [63.0]),        # σ 2 borrowed: tol 2·2·√2 = 5.66
        ("cornn-smnist", "epoch", 3.0, "accuracy", 60.0, [67.0]),        # 7 > 5.66
        ("indrnn-smnist", "iteration", 3400.0, "accuracy", 85.0, [86.0]),  # 3400/1782 -> epoch 2
        ("lem-adding-T2000", "iteration", 101.0, "mse", 0.17, [0.16]),     # no σ to borrow
        ("lem-psmnist", "epoch", 1.0, "accuracy", 63.9, []),
    ])
    by = frame.set_index(["anchor", "point"])
    assert by.loc[(sanity.REFERENCE, 1.0)].sigma == pytest.approx(2.0)
    # the reference's own rows: n = 3, tolerance 2·2·√(4/3) = 4.62, |92 − 90| passes
    assert by.loc[(sanity.REFERENCE, 1.0)].tolerance == pytest.approx(4 * math.sqrt(4 / 3))
    assert by.loc[(sanity.REFERENCE, 1.0)].verdict == "pass"
    assert by.loc[("cornn-smnist", 2.0)].tolerance == pytest.approx(4 * math.sqrt(2))
    assert by.loc[("cornn-smnist", 2.0)].verdict == "pass"
    assert by.loc[("cornn-smnist", 3.0)].verdict == "FAIL"
    assert by.loc[("indrnn-smnist", 3400.0)].sigma == pytest.approx(2.0)
    assert by.loc[("lem-adding-T2000", 101.0)].verdict == "no tolerance (needs 3 seeds)"
    assert by.loc[("lem-psmnist", 1.0)].verdict == "not run"


def test_accuracy_tolerance_has_a_floor():
    same = [(sanity.REFERENCE, "epoch", 1.0, "accuracy", 90.0, [90.0, 90.1, 89.9])]
    frame = _frame(same + [("cornn-smnist", "epoch", 1.0, "accuracy", 90.0, [90.9])])
    assert frame.tolerance.min() == sanity.FLOOR
    assert frame.verdict.tolist() == ["pass", "pass"]


def test_fresh_evaluation_sets_add_their_sampling_error_to_an_mse_tolerance():
    # the adding anchor's authors test on 1000 fresh sequences, we on a fixed 1000: on the
    # trivial plateau the seeds agree to 0.001, yet a 0.01 gap is sampling noise, not a failure
    plateau = [0.175, 0.176, 0.174]
    frame = _frame([("lem-adding-T2000", "iteration", 301.0, "mse", 0.166, plateau),
                    ("lem-adding-T2000", "iteration", 1901.0, "mse", 0.006, plateau)])
    sampling = math.hypot(sanity.sampling_error(0.166, 1000), sanity.sampling_error(0.175, 1000))
    assert sampling == pytest.approx(math.sqrt(2) * math.hypot(0.166, 0.175) / math.sqrt(1000))
    expected = 2 * math.sqrt(0.001**2 * (1 + 1 / 3) + sampling**2)
    assert frame.tolerance.iloc[0] == pytest.approx(expected)
    # on the plateau a network that learned nothing (1/6) passes as well: uninformative, not a pass
    assert frame.verdict.iloc[0].startswith("uninformative") and frame.verdict.iloc[1] == "FAIL"
    # an anchor evaluated on a fixed set (eval_samples None) gets no such term
    assert sanity.ANCHORS["lem-adding-T2000"].eval_samples == 1000 and sanity.ANCHORS["lem-smnist"].eval_samples is None


def test_a_point_a_run_halfway_from_chance_would_pass_is_uninformative():
    # lem-psmnist's own three seeds (73.7, 21.9, 25.5 % after epoch 1) give σ 29 pp and a
    # tolerance of 67 pp around the log's 63.9 %: a run at 36.95 % (halfway from chance, 10 %) passes too
    ref = [(sanity.REFERENCE, "epoch", 1.0, "accuracy", 90.0, [90.0, 92.0, 94.0])]
    frame = _frame(ref + [("lem-psmnist", "epoch", 1.0, "accuracy", 63.9, [73.73, 21.93, 25.47]),
                          ("cornn-smnist", "epoch", 1.0, "accuracy", 52.23, [45.60, 53.17, 54.70])])
    assert frame.verdict.iloc[0] == "pass"
    assert frame.verdict.iloc[1] == "uninformative (a run at 37, halfway from chance, passes too)"
    # coRNN's tolerance (11.3 pp) is below the 21 pp from its log to halfway: a real check
    assert frame.tolerance.iloc[2] < (52.23 - sanity.ANCHORS["cornn-smnist"].chance) / 2
    assert frame.verdict.iloc[2] == "pass"
    assert "0 of 1 points run pass, 1 uninformative" in sanity_report.notes(frame.iloc[1:2])
    # the header's chance scores are the anchors' data, by task and metric
    phrase = sanity_report.chance_phrase()
    assert "accuracy 10 % on smnist and psmnist" in phrase and "mse 0.1667 on adding" in phrase


def test_one_published_run_is_placed_among_ours_by_rank():
    from suite.analysis.stats import first_below, one_run_among

    assert first_below([101, 201, 301], [0.17, 0.09, 0.01], 0.1) == 201.0
    assert first_below([101, 201], [0.17, 0.16], 0.1) is None
    # three of ours censored after theirs (still above at 2401 against their 1701): later, known
    assert one_run_among(1701.0, [(2401.0, False)] * 3) == (
        "not decided: theirs before all 3 of ours, which a run drawn from our distribution is with "
        "probability 1/4 = 0.25; below 0.05 only from 20 runs of ours on")
    # 19 runs give 1/20, not below 0.05; the 20th decides, as the sentence above says
    assert one_run_among(1701.0, [(2401.0, False)] * 19).startswith("not decided: theirs before all 19")
    assert one_run_among(1701.0, [(2401.0, False)] * 19 + [(3001.0, True)]).startswith("FAIL: theirs before all 20")
    assert one_run_among(1701.0, [(1501.0, True), (2401.0, False), (4001.0, True)]) == (
        "within our distribution: 1 of our 3 runs earlier")
    # a run of ours stopped before their escape cannot say which came first
    assert one_run_among(1701.0, [(1201.0, False), (2401.0, False)]).startswith("not decided (a run of ours stopped")
    assert one_run_among(1701.0, []) == "not decided (none of our runs has finished)"


def test_the_adding_anchor_has_an_escape_study_on_fresh_seeds():
    study = sanity.ANCHORS["lem-adding-T2000"].escape
    cells = sanity.escape_configs(list(sanity.ANCHORS))
    assert [cfg.seed for _, cfg in cells] == list(study.seeds)
    assert not set(study.seeds) & set(sanity.ANCHORS["lem-adding-T2000"].seeds)
    for name, cfg in cells:
        assert name == "lem-adding-T2000" and cfg.recipe == name
        assert (cfg.steps, cfg.eval_every, cfg.epochs) == (study.steps, 100, None)
    from suite.studies import runner

    planned = runner.cells(runner.plan(runner.Request("sanity", cells="lem-adding-T2000")))
    assert [c.seed for c in planned] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    section = sanity_report.escape_section("lem-adding-T2000", sanity.escape_runs("lem-adding-T2000", sanity.RUNS))
    assert f"The authors' log: 1701 ({sanity.ANCHORS['lem-adding-T2000'].log})" in section


def test_unknown_anchor_is_one_line(capsys):
    assert main(["paper", "sanity", "--anchors", "lem-smnist,nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown anchor 'nope'" in err and len(err.strip().splitlines()) == 1
    from suite.studies import runner

    with pytest.raises(SuiteError, match="unknown anchor"):
        runner.cells(runner.plan(runner.Request("sanity", cells="nope")))


def test_committed_table_is_built_from_the_committed_records():
    committed = pd.read_csv(sanity.OUT / "table.csv")
    rebuilt = sanity.build_rows(list(sanity.ANCHORS), sanity.RUNS)
    assert list(rebuilt.anchor) == list(committed.anchor) and list(rebuilt.point) == list(committed.point)
    for got, want in zip(rebuilt.ours_seeds, committed.ours_seeds.fillna("")):
        want = [float(v) for v in str(want).split(";") if v]
        assert got == pytest.approx(want), "results/tables/sanity-full/table.csv is not what the committed records give"
    assert list(rebuilt.verdict) == list(committed.verdict)


def test_an_epoch_recipe_cut_to_steps_keeps_its_schedule():
    """IndRNN's recipe decays after epochs 318.76 and 368.39; cut to 5100 steps the cell must
    train at the recipe's constant lr, not decay at steps 319 and 368 (which it once did)."""
    cfg = sanity.configs(["indrnn-smnist"])[0][1]  # every seed shares the schedule
    assert cfg.epochs is None and cfg.steps == 5100
    assert cfg.schedule == "constant" and cfg.milestones == ()
    from suite.core.recipes import recipe_config

    with pytest.raises(SuiteError, match="would be read as steps"):
        recipe_config("indrnn-smnist", ["epochs=none", "steps=5100"])
    ok = recipe_config("indrnn-smnist", ["epochs=none", "steps=5100", "milestones=4000"])
    assert ok.milestones == (4000.0,)


def test_the_sanity_table_is_a_table_of_cells_like_the_others():
    # one runner: its cells are harness runs, so --cells picks some and --launcher may place them
    from suite.studies import runner

    plan = runner.plan(runner.Request("sanity", cells="lem-smnist,cornn-smnist", launcher=True))
    assert (plan.profile_name, plan.kind) == ("full", "anchors")
    assert plan.where.name == "sanity-full" and plan.runs_root == plan.where / "records"
    cells = runner.cells(plan)
    assert [(c.recipe, c.seed) for c in cells] == [("lem-smnist", s) for s in (0, 1, 2)] + \
        [("cornn-smnist", s) for s in (0, 1, 2)]
    assert all(c.origins["epochs"].startswith("set") for c in cells)  # the budget cut to the logged points
