"""tracetorch.models: the layer spec parser, build_network and the tasks' networks."""

from __future__ import annotations

import pytest
import torch

import tracetorch as tt
from tracetorch.models import LAYER_KINDS, build_model, build_network, layer_class, parse_spec


def test_parse_spec():
    assert parse_spec("lif:128,lif:64") == [("lif", 128, {}), ("lif", 64, {})]
    assert parse_spec(" lif:3 , syn:4 ") == [("lif", 3, {}), ("syn", 4, {})]


@pytest.mark.parametrize(
    "spec, match",
    [
        ("lif:", "expected KIND:WIDTH"),
        ("lif", "expected KIND:WIDTH"),
        ("", "expected KIND:WIDTH"),
        ("lif:8,", "expected KIND:WIDTH"),
        ("foo:3", "unknown layer kind 'foo'.*one of lif, rlif"),
        ("LIF:3", "unknown layer kind 'LIF'"),
        ("lif:-1", r"integer in \[1, 65536\], got '-1'"),
        ("lif:0", "got '0'"),
        ("lif:1e9", "got '1e9'"),
        ("lif:100000", "got '100000'"),
    ],
)
def test_bad_specs_name_the_item_and_the_form(spec, match):
    with pytest.raises(ValueError, match=match) as e:
        parse_spec(spec)
    assert "KIND:WIDTH" in str(e.value)


def test_build_network_chains_the_widths():
    net = build_network("lif:8,lif:6", 5, 3)
    assert [(type(m).__name__, m.in_features, m.out_features) for m in net] == [
        ("LIF", 5, 8),
        ("LIF", 8, 6),
        ("LI", 6, 3),
    ]
    assert net(torch.zeros(4, 2, 5)).shape == (4, 2, 3)
    lis = build_network([("lif", 4, {"bias": False})], 5, 3, readout="lis", bias=False)
    assert type(lis[1]).__name__ == "LIS" and lis[0].bias is None and lis[1].bias is None
    with pytest.raises(ValueError, match="unknown layer kind 'softmax'"):
        build_network("lif:4", 5, 3, readout="softmax")
    with pytest.raises(ValueError, match="in_features must be a positive int"):
        build_network("lif:4", 0, 3)


def test_kinds_are_looked_up_in_tracetorch_nn_at_build_time(monkeypatch):
    assert LAYER_KINDS["rlif"] == "RLIF" and LAYER_KINDS["syn"] == LAYER_KINDS["synaptic"]

    class RLIF(torch.nn.Linear):  # a stand-in with the layers' (in, out) signature
        pass

    monkeypatch.setattr(tt.nn, "RLIF", RLIF, raising=False)
    net = build_network("rlif:4,lif:3", 5, 2)
    assert type(net[0]) is RLIF and type(net[1]) is tt.nn.LIF
    monkeypatch.delattr(tt.nn, "RLIF")
    with pytest.raises(ValueError, match="needs tracetorch.nn.RLIF, which this version"):
        layer_class("rlif")


def test_build_model_hidden_means_the_tasks_lif_layers():
    digits = tt.data.Digits(steps=4)
    net = build_model(digits, 8)
    assert [type(m).__name__ for m in net] == ["LIF", "LI"] and net[0].out_features == 8
    yinyang = tt.data.YinYang(steps=4, train_size=8, test_size=8)
    assert [type(m).__name__ for m in build_model(yinyang, 8)] == ["LIF", "LIF", "LI"]
    spec = build_model(digits, layers="lif:8,lif:5")
    assert [m.out_features for m in spec] == [8, 5, 10]
    with pytest.raises(ValueError, match="exactly one of hidden"):
        build_model(digits, 8, layers="lif:8")
    with pytest.raises(ValueError, match="exactly one of hidden"):
        build_model(digits)


def test_build_model_evidence_layers_all_get_the_memory_settings():
    task = tt.data.Evidence(delay=20, train_size=4, test_size=4)
    slow = 1.0 - 1.0 / task.steps
    for net in (build_model(task, 8), build_model(task, layers="lif:8,lif:6")):
        for m in net:
            assert m.bias is None
        readout = net[-1]
        assert type(readout).__name__ == "LI"
        assert float(readout.beta.detach().flatten()[0]) == pytest.approx(slow, abs=1e-6)
