"""The indirection API is chosen by name, through stevedore entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects
from novalet.db import services as db_services
from novalet.objects import base as objects_base

THIRD_PARTY = '''
from novalet.indirection import inprocess


class CountingIndirection(inprocess.InProcessIndirectionAPI):
    """A third party's indirection API: counts calls, then delegates."""

    calls = []

    def object_action(self, context, objinst, objmethod, args, kwargs):
        self.calls.append(objmethod)
        return super().object_action(context, objinst, objmethod, args, kwargs)

    def object_class_action_versions(self, context, objname, objmethod,
                                     object_versions, args, kwargs):
        self.calls.append(objname + "." + objmethod)
        return super().object_class_action_versions(
            context, objname, objmethod, object_versions, args, kwargs)
'''


@pytest.fixture
def third_party_plugin(tmp_path):
    """Install a distribution that registers 'counting' in novalet.indirection."""
    (tmp_path / "thirdparty_indirection.py").write_text(THIRD_PARTY)
    dist = tmp_path / "thirdparty_indirection-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: thirdparty-indirection\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[novalet.indirection]\n"
        "counting = thirdparty_indirection:CountingIndirection\n")
    yield


def test_third_party_indirection_is_loaded_by_name(third_party_plugin,
                                                   tmp_path, sqlite_db):
    """A fresh process with the third party's distribution installed picks
    its implementation by name from [objects] indirection."""
    config = tmp_path / "novalet.conf"
    config.write_text("[database]\nconnection = %s\n"
                      "[objects]\nindirection = counting\n" % sqlite_db.url)
    script = textwrap.dedent('''
        import sys
        from novalet import conf, context, exception, indirection, objects
        from novalet.db import services as db_services
        conf.parse_args(["--config-file", sys.argv[1]])
        objects.register_all()
        api = indirection.configure(conf.CONF)
        ctxt = context.get_admin_context()
        svc = objects.Service(ctxt, host="h", binary="b")
        svc.create()
        svc.report_count = 1
        svc.save()
        objects.ServiceList.get_all(ctxt)
        print(type(api).__name__, api.calls)
        try:
            db_services.service_get_all(ctxt)
        except exception.DBNotAllowed:
            print("database blocked")
    ''')
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script, str(config)],
                            capture_output=True, text=True, timeout=60,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert ("CountingIndirection ['create', 'save', 'ServiceList.get_all']"
            in result.stdout)
    assert "database blocked" in result.stdout  # not 'direct': kept off the DB


def test_unknown_indirection_is_a_clear_error(conf):
    conf("indirection", "carrier-pigeon", "objects")
    with pytest.raises(exception.ConfigurationError) as info:
        indirection.configure(novalet_conf.CONF)
    assert "carrier-pigeon" in info.value.message
    assert objects_base.get_indirection_api() is None


def test_direct_runs_locally(conf, sqlite_db):
    conf("indirection", "direct", "objects")
    indirection.configure(novalet_conf.CONF)
    assert objects_base.get_indirection_api() is None
    db_services.service_get_all(context.get_admin_context())  # allowed


def test_inprocess_blocks_the_caller_but_not_its_conductor(conf, sqlite_db):
    conf("indirection", "inprocess", "objects")
    indirection.configure(novalet_conf.CONF, binary="novalet-compute")
    ctxt = context.get_admin_context()
    objects.Service(ctxt, host="h", binary="novalet-compute").create()
    with pytest.raises(exception.DBNotAllowed) as info:
        db_services.service_get_all(ctxt)
    assert "novalet-compute" in info.value.message
    assert "service_get_all" in info.value.message
    assert "test_indirection" in info.value.message  # the caller


def test_a_process_with_rpc_indirection_cannot_query(sqlite_db, tmp_path):
    """A separate process configured like a compute cannot reach the DB."""
    config = tmp_path / "compute.conf"
    config.write_text("[DEFAULT]\ntransport_url = fake://\n"
                      "[database]\nconnection = %s\n"
                      "[objects]\nindirection = rpc\n" % sqlite_db.url)
    script = textwrap.dedent('''
        import sys
        from novalet import conf, context, exception, indirection, objects
        from novalet.db import services as db_services
        conf.parse_args(["--config-file", sys.argv[1]])
        objects.register_all()
        indirection.configure(conf.CONF, binary="novalet-compute")
        try:
            db_services.service_get_all(context.get_admin_context())
        except exception.DBNotAllowed as e:
            print("refused:", e)
            sys.exit(0)
        print("queried the database")
        sys.exit(1)
    ''')
    result = subprocess.run([sys.executable, "-c", script, str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "novalet-compute may not use the database" in result.stdout
