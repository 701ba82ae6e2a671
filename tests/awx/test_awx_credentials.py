"""The "logstack Elasticsearch" credential type of awx/configure.yml, injected as AWX injects it
(inputs rendered into environment variables, the CA certificate written to a file of the job),
then a job under ansible-runner reaching a sandbox cluster that wants TLS and credentials."""
import os

import pytest
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment
from test_runner import awx_private_data_dir, run_job

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def configure_tasks():
    with open(os.path.join(ROOT, "awx", "configure.yml"), encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Loader)[0]["tasks"]  # noqa: S506 (SafeLoader + one tag)


def credential_type(name):
    for task in configure_tasks():
        spec = task.get("awx.awx.credential_type")
        if spec and spec["name"] == name:
            return spec
    raise AssertionError("awx/configure.yml defines no credential type %r" % name)


def inject(spec, inputs, files_dir):
    """What AWX does with a credential of this type when a job starts: each file template rendered
    and written to a file (tower.filename.<name>), then each env injector rendered (sandboxed Jinja)."""
    env = ImmutableSandboxedEnvironment()
    known = {f["id"] for f in spec["inputs"]["fields"]}
    assert set(inputs) <= known, set(inputs) - known
    namespace = dict(inputs)
    filenames = {}
    for key, template in (spec["injectors"].get("file") or {}).items():
        name = key.split(".", 1)[1]
        path = os.path.join(files_dir, "cred-%s" % name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(env.from_string(template).render(**namespace))
        filenames[name] = path
    namespace["tower"] = namespace["awx"] = {"filename": filenames}
    return {k: env.from_string(v).render(**namespace) for k, v in spec["injectors"]["env"].items()}


def tls_scenario(auth):
    """small.yml over https with the authentication asked for."""
    with open(os.path.join(ROOT, "sandbox", "scenarios", "small.yml"), encoding="utf-8") as fh:
        scenario = yaml.safe_load(fh)
    scenario["es"] = dict(scenario["es"], https=True, auth=auth)
    return scenario


def test_upgrade_and_reindex_templates_get_the_elasticsearch_credential():
    with open(os.path.join(ROOT, "awx", "job_templates.yml"), encoding="utf-8") as fh:
        templates = yaml.safe_load(fh)["logstack_awx_job_templates"]
    for t in templates:
        with open(os.path.join(ROOT, t["playbook"]), encoding="utf-8") as fh:
            talks_to_es = "group/logstack.elk.es" in fh.read()
        assert bool(t.get("needs_es")) == talks_to_es, t["key"]
    task = next(t for t in configure_tasks() if "awx.awx.job_template" in t)
    assert "'logstack ' ~ item.0 ~ ' Elasticsearch'" in task["vars"]["_logstack_awx_credentials"]
    stored = next(t for t in configure_tasks() if (t.get("awx.awx.credential") or {}).get("credential_type")
                  == "logstack Elasticsearch")
    assert stored["no_log"] is True


@pytest.mark.parametrize("auth", ["basic", "api_key"])
def test_a_job_with_the_credential_reaches_a_tls_cluster_with_its_ca_and_secret(auth, tmp_path, monkeypatch,
                                                                               sandbox_process):
    sb = sandbox_process(tls_scenario(auth))
    sb_env, cluster_name = sb.env, sb.cluster_name
    with open(sb_env["ES_CA_FILE"], encoding="utf-8") as fh:
        ca_pem = fh.read()
    # What an operator types into the credential form: the CA as text, not a path.
    inputs = {"es_url": sb_env["ES_URL"], "es_ca_cert": ca_pem}
    if auth == "basic":
        inputs.update(es_username=sb_env["ES_USERNAME"], es_password=sb_env["ES_PASSWORD"])
    else:
        inputs.update(es_api_key=sb_env["ES_API_KEY"])
    files = tmp_path / "awx-files"
    files.mkdir()
    injected = inject(credential_type("logstack Elasticsearch"), inputs, str(files))
    assert injected["ES_CA_FILE"].startswith(str(files)) and open(injected["ES_CA_FILE"]).read() == ca_pem
    aws = {k: v for k, v in sb_env.items() if k.startswith("AWS_")}
    envvars = dict(aws, **injected, SANDBOX_CLUSTER_NAME=cluster_name, AWS_EC2_METADATA_DISABLED="true")
    pdd = awx_private_data_dir(tmp_path, "inventories/sandbox", extravars={}, envvars=envvars)
    runner, events, failed = run_job(pdd, "playbooks/cluster-info.yml", monkeypatch)
    output = runner.stdout.read()
    assert (runner.status, failed) == ("successful", []), output[-3000:]
    assert "status: green" in output or "green" in output, output[-3000:]
    secret = inputs.get("es_password") or inputs.get("es_api_key")
    assert secret not in output
