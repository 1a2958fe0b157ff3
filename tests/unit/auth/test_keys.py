"""Host names, key files and which key signs what (novalet.auth.keys)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from novalet import exception
from novalet.auth import keys, principal


@pytest.mark.parametrize("name", [
    "hosta", "host-a", "compute-1.example.org", "a", "0", "a" * 63,
    ".".join(["a" * 63] * 3) + "." + "a" * 61])
def test_canonical_host_names(name):
    assert keys.canonical_host(name) == name


@pytest.mark.parametrize("name", [
    "HostA", "hostA", "HOSTA",             # case is not folded
    " hosta", "hosta ", "host a", "hosta\t", "hosta\n",  # whitespace
    "hosta\0", "\0hosta",                  # NUL
    "host\u0430", "h\u043eSTa", "hosta\u200b",  # Cyrillic a/o, zero width
    "hoſta",                               # long s, which lower()s to s
    "", "-hosta", "hosta-", "host..a", "hosta.", ".hosta", "host_a",
    "a" * 64, ".".join(["a" * 63] * 4), None, 7, b"hosta"])
def test_other_names_are_refused(name):
    with pytest.raises(exception.InvalidHostName):
        keys.canonical_host(name)
    assert not keys.is_canonical_host(name)


def test_master_key_file_is_private_and_never_overwritten(tmp_path):
    path = str(tmp_path / "etc" / "master.key")
    key_id = keys.init_master(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    content = keys.read_file(path, keys.MASTER)
    assert [k for k, _ in content["keys"]] == [key_id]
    before = Path(path).read_text()
    with pytest.raises(exception.AuthKeyError, match="exists already"):
        keys.init_master(path)
    assert Path(path).read_text() == before
    # Rotation: a new signing key in front, the old one still verifies.
    new_id = keys.init_master(path, rotate=True)
    assert [k for k, _ in keys.read_file(path, keys.MASTER)["keys"]] == [
        new_id, key_id]
    keys.retire_master(path, key_id)
    assert [k for k, _ in keys.read_file(path, keys.MASTER)["keys"]] == [new_id]
    with pytest.raises(exception.AuthKeyError, match="only key"):
        keys.retire_master(path, new_id)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_host_key_is_derived_from_the_master_key(tmp_path):
    master = str(tmp_path / "master.key")
    keys.init_master(master)
    keys.init_master(master, rotate=True)
    out = str(tmp_path / "a.key")
    ids = keys.write_host_key(master, "hosta", out)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    host_file = keys.read_file(out, keys.HOST)
    secrets = dict(keys.read_file(master, keys.MASTER)["keys"])
    assert host_file["host"] == "hosta"
    assert [k for k, _ in host_file["keys"]] == ids
    for key_id, secret in host_file["keys"]:
        assert secret == keys.host_key(secrets[key_id], "hosta")
        assert secret != keys.host_key(secrets[key_id], "hostb")
        assert secret != keys.admin_key(secrets[key_id])
    with pytest.raises(exception.InvalidHostName):
        keys.write_host_key(master, "HostA", str(tmp_path / "b.key"))


def _write(path, content, mode=0o600):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, mode), "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    os.chmod(path, mode)
    return str(path)


@pytest.mark.parametrize("content, mode, reason", [
    ({"novalet_key": "master", "keys": [{"id": "k", "secret": "A" * 43 + "="}]},
     0o644, "mode 0644"),
    ({"novalet_key": "master", "keys": [{"id": "k", "secret": "A" * 43 + "="}]},
     0o640, "mode 0640"),
    ("not json", 0o600, "not JSON"),
    ({"novalet_key": "host", "host": "a", "keys": []}, 0o600, "not a novalet"),
    ({"novalet_key": "master", "keys": []}, 0o600, "holds no key"),
    ({"novalet_key": "master", "keys": [{"id": "k", "secret": "!!"}]}, 0o600,
     "not base64"),
    ({"novalet_key": "master", "keys": [{"id": "k", "secret": "AAAA"}]}, 0o600,
     "3 bytes"),
    ({"novalet_key": "master", "keys": [{"secret": "A" * 43 + "="}]}, 0o600,
     "no id"),
])
def test_unusable_key_files_are_refused(tmp_path, content, mode, reason):
    path = _write(tmp_path / "k", content, mode)
    with pytest.raises(exception.AuthKeyError, match=reason):
        keys.read_file(path, keys.MASTER)


def test_host_key_file_of_a_non_canonical_host_is_refused(tmp_path):
    path = _write(tmp_path / "k", {"novalet_key": "host", "host": "HostA",
                                   "keys": [{"id": "k", "secret": "A" * 43 + "="}]})
    with pytest.raises(exception.AuthKeyError, match="not canonical"):
        keys.read_file(path, keys.HOST)


def _rings(tmp_path):
    master = str(tmp_path / "master.key")
    keys.init_master(master)
    keys.write_host_key(master, "hosta", str(tmp_path / "a.key"))
    conductor = keys.KeyRing.from_files(master, None, "conductor")
    host_a = keys.KeyRing.from_files(None, str(tmp_path / "a.key"), "conductor")
    return conductor, host_a


def test_who_signs_with_which_key(tmp_path):
    conductor, host_a = _rings(tmp_path)
    admin = principal.admin()
    a = principal.host("hosta")
    # A host signs as itself, whatever the target.
    who, key_id, key = host_a.signing("conductor", None)
    assert who == a
    assert conductor.verifying(key_id, a, "conductor", None) == key
    assert host_a.verifying(key_id, a, "conductor", None) == key  # itself
    # The admin signs for the conductor with the admin key, which no host
    # holds; for one compute with that compute's key.
    who, key_id, to_conductor = conductor.signing("conductor", None)
    assert who == admin
    assert host_a.verifying(key_id, admin, "conductor", None) is None
    _, _, to_a = conductor.signing("compute", "hosta")
    assert to_a == key and to_a != to_conductor
    assert host_a.verifying(key_id, admin, "compute", "hosta") == to_a
    # A compute verifies the admin for itself only, never another host.
    assert host_a.verifying(key_id, admin, "compute", "hostb") is None
    assert host_a.verifying(key_id, principal.host("hostb"), "conductor",
                            None) is None
    assert conductor.verifying("unknown", a, "conductor", None) is None
