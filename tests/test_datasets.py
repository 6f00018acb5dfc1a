"""Loaders of the public benchmark formats, their optima tables, and the placement problem they
become. Files are written by the tests; the shared data folder, when present, is read as well."""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import numasched
from numasched.evaluation import datasets as ds

DATA = ds.default_data_dir()
needs_data = pytest.mark.skipif(DATA is None, reason="benchmark data folder (../shared/data) "
                                                     "not present")


def write(tmp_path, name: str, text: str, newline: str = "\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


# --------------------------------------------------------------------------------------------
# BPPLIB one-dimensional files
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_load_bpp(tmp_path, newline):
    path = write(tmp_path, "tiny_01.txt", "4\n10\n7\n5\n5\n3\n", newline)
    inst = ds.load_bpp(path)
    assert inst.name == "tiny_01" and inst.capacity == 10 and inst.n == 4
    assert inst.sizes.dtype == np.int64 and inst.sizes.tolist() == [7, 5, 5, 3]
    assert not inst.sizes.flags.writeable
    assert inst.path == path
    assert "tiny_01" in repr(inst)


def test_load_bpp_tolerates_blank_lines_and_spaces(tmp_path):
    inst = ds.load_bpp(write(tmp_path, "b.txt", "  3 \n\n150\n 100\n99\n\n20  \n\n\n", "\r\n"))
    assert inst.sizes.tolist() == [100, 99, 20] and inst.capacity == 150


@pytest.mark.parametrize("text,line,message", [
    ("", None, "unexpected end of file: expected the item count"),
    ("3\n", 1, "expected the bin capacity"),
    ("x\n10\n", 1, "item count n"),
    ("3 4\n10\n", 1, "item count n"),
    ("-2\n10\n", 1, "item count n must be integers in 0"),
    ("2\n0\n1\n1\n", 2, "bin capacity must be integers in 1"),
    ("3\n10\n1\n2\n", 4, "declares 3 items but holds 2 weights"),
    ("2\n10\n1\n2\n3\n", 5, "declares 2 items but holds more weights"),
    ("2\n10\n1\nfive\n", 4, "expected one integer item weight, got 'five'"),
    ("2\n10\n1\n2.5\n", 4, "expected one integer item weight"),
    ("2\n10\n1 2\n3\n", 3, "expected one integer item weight"),
    ("2\n10\n11\n3\n", 3, "item weight 11 is outside 1..10"),
    ("2\n10\n0\n3\n", 3, "item weight 0 is outside"),
])
def test_load_bpp_errors_name_the_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, "bad.txt", text, "\r\n")
    with pytest.raises(ValueError) as err:
        ds.load_bpp(path)
    msg = str(err.value)
    assert str(path) in msg and message in msg
    if line is not None:
        assert f"line {line}:" in msg
    else:
        assert "line" not in msg.split(":")[0]


def test_load_bpp_counts_lines_across_blank_ones(tmp_path):
    path = write(tmp_path, "gap.txt", "2\n\n10\n\n4\n\nnope\n")
    with pytest.raises(ValueError, match=r"gap.txt, line 7: expected one integer"):
        ds.load_bpp(path)


def test_load_bpp_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        ds.load_bpp(tmp_path / "absent.txt")


# --------------------------------------------------------------------------------------------
# VPSolver .vbp files
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_load_vbp_expands_the_demand_column(tmp_path, newline):
    path = write(tmp_path, "CL_1_5_1.vbp", "2\n100 80\n3\n30 40 2\n50 10 1\n20 20 2\n", newline)
    inst = ds.load_vbp(path)
    assert inst.name == "CL_1_5_1" and inst.d == 2 and inst.n == 5
    assert inst.capacities.tolist() == [100, 80]
    assert inst.sizes.dtype == np.int64 and inst.sizes.shape == (5, 2)
    assert inst.sizes.tolist() == [[30, 40], [30, 40], [50, 10], [20, 20], [20, 20]]
    assert not inst.sizes.flags.writeable and not inst.capacities.flags.writeable
    assert ds.load(path).sizes.tolist() == inst.sizes.tolist()


def test_load_vbp_demand_zero_and_zero_weights(tmp_path):
    inst = ds.load_vbp(write(tmp_path, "z.vbp", "2\n10 10\n3\n1 0 2\n5 5 0\n0 3 1\n"))
    assert inst.sizes.tolist() == [[1, 0], [1, 0], [0, 3]]


def test_load_vbp_other_dimensions(tmp_path):
    inst = ds.load_vbp(write(tmp_path, "d3.vbp", "3\n10 10 10\n1\n1 2 3 4\n"))
    assert inst.sizes.shape == (4, 3)
    inst = ds.load_vbp(write(tmp_path, "d1.vbp", "1\n10\n2\n6 1\n4 2\n"))
    assert inst.sizes.tolist() == [[6], [4], [4]]


@pytest.mark.parametrize("text,line,message", [
    ("0\n", 1, "the dimension d must be integers in 1"),
    ("2\n100\n", 2, "the 2 bin capacities (2 integers)"),
    ("2\n100 0\n", 2, "bin capacities must be integers in 1"),
    ("2\n100 100\n", 2, "unexpected end of file: expected the number of item types"),
    ("2\n100 100\n2\n10 10 1\n", 4, "unexpected end of file: expected item type 2 of 2"),
    ("2\n100 100\n1\n10 10\n", 4, "item type 1 of 1 (w1 .. w2 demand) (3 integers)"),
    ("2\n100 100\n1\n10 10 1 1\n", 4, "(3 integers)"),
    ("2\n100 100\n1\n10 x 1\n", 4, "as integers, got '10 x 1'"),
    ("2\n100 100\n1\n10 10 -1\n", 4, "must be integers in 0"),
    ("2\n100 100\n1\n10 101 1\n", 4, "weight w2 = 101 exceeds the capacity 100"),
    ("2\n100 100\n1\n0 0 1\n", 4, "every weight 0"),
    ("2\n100 100\n1\n10 10 1\n5 5 1\n", 5, "declares 1 item types but has more lines"),
])
def test_load_vbp_errors_name_the_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, "bad.vbp", text, "\r\n")
    with pytest.raises(ValueError) as err:
        ds.load_vbp(path)
    msg = str(err.value)
    assert f"{path}, line {line}: " in msg and message in msg, msg


# --------------------------------------------------------------------------------------------
# Optima tables
# --------------------------------------------------------------------------------------------
def test_bpp_optima(tmp_path):
    path = write(tmp_path, "optima.tsv",
                 "name\tlower_bound\tbest_known\nFalkenauer_u120_00\t48\t48\nN1C1W1_A\t25\t26\n",
                 "\r\n")
    assert ds.bpp_optima(path) == {"Falkenauer_u120_00": 48, "N1C1W1_A": 26}


@pytest.mark.parametrize("text,message", [
    ("name\tbest_known\na\t3\n", r"line 1: missing column\(s\) \['lower_bound'\]"),
    ("name\tlower_bound\tbest_known\na\t3\tx\n", "line 2: best_known must be an integer"),
    ("name\tlower_bound\tbest_known\na\t3\t3\nb\t5\t4\n", "line 3: need 1 <= lower_bound"),
    ("name\tlower_bound\tbest_known\na\t3\t3\na\t3\t3\n", "line 3: instance 'a' listed twice"),
    ("name\tlower_bound\tbest_known\n\t3\t3\n", "line 2: empty instance name"),
])
def test_bpp_optima_errors(tmp_path, text, message):
    path = write(tmp_path, "optima.tsv", text)
    with pytest.raises(ValueError, match=message):
        ds.bpp_optima(path)


CT01_HEADER = "dimension;class;items;instance_number;LB;UB;best_known_LB;best_known_UB\n"


def test_ct01_optima_keys_are_file_names(tmp_path):
    path = write(tmp_path, "ct01_optima.csv", CT01_HEADER +
                 "2;1;25;1;6;6;6;6\n2;10;24;3;8;8;8;8\n2;10;201;2;67;68;67;67\n"
                 "2;9;200;5;40;41;40;41\n3;1;25;1;9;9;9;9\n", "\r\n")
    optima = ds.ct01_optima(path)
    # best_known_UB is the value; 3-dimensional rows are left out
    assert optima == {"CL_1_25_1": 6, "CL_10_24_3": 8, "CL_10_201_2": 67, "CL_9_200_5": 41}
    assert ds.ct01_name(10, 99, 4) == "CL_10_99_4"


@pytest.mark.parametrize("row,message", [
    ("2;1;25;1;6;6;6;x\n", "line 2: best_known_UB must be an integer"),
    ("2;1;25;1;6;6;7;6\n", "line 2: need 1 <= best_known_LB"),
    ("2;1;25;1;6;6;6;6\n2;1;25;1;6;6;6;6\n", "line 3: instance 'CL_1_25_1' listed twice"),
])
def test_ct01_optima_errors(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        ds.ct01_optima(write(tmp_path, "ct.csv", CT01_HEADER + row))
    with pytest.raises(ValueError, match="missing column"):
        ds.ct01_optima(write(tmp_path, "ct2.csv", "dimension;class\n2;1\n"))


# --------------------------------------------------------------------------------------------
# Data folder discovery
# --------------------------------------------------------------------------------------------
def test_default_data_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMASCHED_DATA", str(tmp_path))
    assert ds.default_data_dir() == tmp_path.resolve()
    monkeypatch.setenv("NUMASCHED_DATA", str(tmp_path / "absent"))
    assert ds.default_data_dir() is None


def test_set_files_and_unknown_sets(tmp_path):
    folder = tmp_path / "bpp1d" / "falkenauer_u"
    folder.mkdir(parents=True)
    for name in ("b.txt", "a.txt", "notes.md"):
        (folder / name).write_text("1\n10\n5\n")
    assert [p.name for p in ds.set_files("falkenauer_u", tmp_path)] == ["a.txt", "b.txt"]
    with pytest.raises(ValueError, match="unknown benchmark set 'scholl_2'.*'ct01'"):
        ds.set_files("scholl_2", tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        ds.set_files("ct01", tmp_path)


def test_load_set_needs_every_optimum(tmp_path):
    folder = tmp_path / "bpp1d" / "falkenauer_u"
    folder.mkdir(parents=True)
    (folder / "x1.txt").write_text("2\n10\n6\n6\n")
    (folder / "x2.txt").write_text("2\n10\n4\n6\n")
    (tmp_path / "bpp1d" / "optima.tsv").write_text("name\tlower_bound\tbest_known\nx1\t2\t2\n"
                                                   "x2\t1\t1\n")
    pairs = ds.load_set("falkenauer_u", tmp_path)
    assert [(i.name, opt) for i, opt in pairs] == [("x1", 2), ("x2", 1)]
    (q,) = ds.packing_quality("falkenauer_u", ["best-fit"], data_dir=tmp_path)
    assert (q.bins, q.optimum, q.at_optimum, q.gap, q.unplaced) == (3, 3, 2, 0.0, 0)
    (folder / "x3.txt").write_text("1\n10\n6\n")
    with pytest.raises(ValueError, match="x3.txt: no optimum for 'x3'"):
        ds.load_set("falkenauer_u", tmp_path)


# --------------------------------------------------------------------------------------------
# As a placement problem
# --------------------------------------------------------------------------------------------
def test_one_dimensional_problem():
    inst = ds.BinPackingInstance("t", 10, np.array([6, 4, 5, 5, 3, 7], dtype=np.int64))
    cluster, requests = ds.as_placement_problem(inst)
    assert (cluster.hosts, cluster.nodes) == (6, 1)
    assert (cluster.node_cpu == 10).all() and (cluster.node_mem == 6).all()
    assert requests.cpu.tolist() == [6, 4, 5, 5, 3, 7] and (requests.mem == 1).all()
    p = numasched.place(cluster, requests, policy="best-fit")
    assert p.placed.all() and p.summary()["hosts_used"] == 3  # 7+3, 6+4, 5+5


def test_two_dimensional_problem():
    inst = ds.VectorPackingInstance("v", np.array([10, 20]),
                                    np.array([[6, 5], [4, 15], [5, 10], [5, 10]]))
    cluster, requests = ds.as_placement_problem(inst)
    assert (cluster.node_cpu == 10).all() and (cluster.node_mem == 20).all()
    assert requests.cpu.tolist() == [6, 4, 5, 5] and requests.mem.tolist() == [5, 15, 10, 10]
    assert numasched.place(cluster, requests, policy="first-fit").summary()["hosts_used"] == 2
    one_d = ds.VectorPackingInstance("w", np.array([10]), np.array([[6], [4], [7]]))
    cluster, requests = ds.as_placement_problem(one_d)
    assert requests.cpu.tolist() == [6, 4, 7] and (cluster.node_mem == 3).all()
    with pytest.raises(ValueError, match="3 dimensions"):
        ds.as_placement_problem(ds.VectorPackingInstance("x", np.array([1, 1, 1]),
                                                         np.ones((2, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match="BinPackingInstance or a VectorPackingInstance"):
        ds.as_placement_problem([1, 2])


def test_zero_weights_keep_the_same_feasible_sets():
    """With a zero weight, amounts are rescaled: every subset of items fits a bin after the
    rescaling exactly when it fits before."""
    rng = np.random.default_rng(4)
    for _ in range(30):
        n = int(rng.integers(1, 7))
        caps = rng.integers(3, 12, size=2)
        sizes = np.stack([rng.integers(0, caps[k] + 1, size=n) for k in range(2)], axis=1)
        sizes[sizes.sum(axis=1) == 0, 0] = 1
        sizes[0, 1] = 0
        inst = ds.VectorPackingInstance("z", caps, sizes)
        cluster, requests = ds.as_placement_problem(inst)
        assert (requests.cpu > 0).all() and (requests.mem > 0).all()
        amounts = np.stack([requests.cpu, requests.mem], axis=1)
        new_caps = np.array([cluster.node_cpu[0, 0], cluster.node_mem[0, 0]])
        for r in range(1, n + 1):
            for subset in itertools.combinations(range(n), r):
                idx = list(subset)
                before = (sizes[idx].sum(axis=0) <= caps).all()
                after = (amounts[idx].sum(axis=0) <= new_caps).all()
                assert before == after, (sizes, caps, subset)


# --------------------------------------------------------------------------------------------
# The shared data folder, when present
# --------------------------------------------------------------------------------------------
@needs_data
def test_every_falkenauer_file_loads_with_its_optimum():
    optima = ds.bpp_optima(DATA / ds.BPP_OPTIMA)
    files = ds.set_files("falkenauer_u", DATA)
    assert len(files) == 80
    for path in files:
        inst = ds.load_bpp(path)
        n = int(re.match(r"Falkenauer_u(\d+)_\d+$", inst.name).group(1))
        assert inst.n == n and inst.capacity == 150
        assert inst.name in optima and optima[inst.name] * 150 >= inst.sizes.sum()


@needs_data
def test_every_scholl_file_has_an_optimum():
    optima = ds.bpp_optima(DATA / ds.BPP_OPTIMA)
    assert len(optima) == 800
    stems = [p.stem for p in ds.set_files("scholl_1", DATA)]
    assert len(stems) == 720 and set(stems) <= set(optima)


@needs_data
def test_every_ct01_file_maps_to_a_row_of_the_optima():
    optima = ds.ct01_optima(DATA / ds.CT01_OPTIMA)
    files = ds.set_files("ct01", DATA)
    assert len(files) == len(optima) == 200
    assert {p.stem for p in files} == set(optima)
    # class 10 has 24, 51, 99 and 201 items (not 25/50/100/200)
    assert {k for k in optima if k.startswith("CL_10_")} == {
        ds.ct01_name(10, n, i) for n in (24, 51, 99, 201) for i in range(1, 6)}
    for path in files:
        inst = ds.load_vbp(path)
        klass, items, _ = map(int, inst.name.split("_")[1:])
        assert inst.n == items and inst.d == 2
        lower = int(np.ceil((inst.sizes.sum(axis=0) / inst.capacities).max()))
        assert optima[inst.name] >= lower


@needs_data
def test_heuristics_never_beat_the_optimum():
    """Sanity of the mapping: no policy uses fewer bins than the proven optimum."""
    for name, every in (("falkenauer_u", 4), ("ct01", 2)):
        pairs = ds.load_set(name, DATA, every=every)
        for q in ds.packing_quality(name, ["first-fit", "best-fit"], instances=pairs):
            assert q.unplaced == 0
            for inst, opt in pairs:
                assert q.per_instance[inst.name] >= opt, (name, inst.name)
        table = ds.format_quality_table(ds.quality_table(ds.packing_quality(
            name, ["best-fit"], instances=pairs, every=every)))
        assert f"{name} 1/{every}" in table and "best-fit" in table
