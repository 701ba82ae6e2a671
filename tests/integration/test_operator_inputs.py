"""No false green, validated variables and no lock left by a failed run (issue 16 items 1-3):
ansible-playbook against the sandbox (moto + the cluster simulator), as an operator types it.

Every case must fail with one sentence naming what to fix, and leave the cluster and its groups
exactly as they were: no lock tag, no exclusion, no setting changed, no node replaced."""
import json

import pytest
from upgrade_support import playbook

from tests.sandbox_plugin import Sandbox

LOCK = "logstack:rollout-lock"


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    box = Sandbox("small.yml", tmp_path_factory.mktemp("inputs"))
    yield box
    box.down()


def lock_tags(sb):
    return [t for g in sb.groups() for t in g.get("Tags", []) if t["Key"] == LOCK]


def untouched(sb):
    """The cluster and its groups as no run touched them."""
    assert lock_tags(sb) == []
    assert sb.exclusions() == ([], [], [])
    assert sb.es("/_cluster/settings")["persistent"] == {}
    assert sb.audit()["nodes_replaced"] == 0


def flat(output):
    """The output with the YAML callback's line folding undone."""
    return " ".join(output.split())


@pytest.mark.parametrize("play", ["playbooks/upgrade-es.yml", "playbooks/reindex-es.yml",
                                  "playbooks/cluster-info.yml"])
def test_a_mistyped_inventory_path_fails_instead_of_matching_no_host(sb, play):
    run = playbook(sb, play=play, inventory="inventories/sandbx")
    assert run.rc != 0, run.output[-2000:]
    assert "inventories/sandbx has no es_clusters host: check the path given with -i" in flat(run.output)
    untouched(sb)


def test_an_inventory_without_es_clusters_host_fails(sb, tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    somewhere:\n      ansible_connection: local\n")
    run = playbook(sb, inventory=str(inventory))
    assert run.rc != 0
    assert "has no es_clusters host" in flat(run.output) and "under the group es_clusters" in flat(run.output)
    untouched(sb)


@pytest.mark.parametrize("play", ["playbooks/upgrade-es.yml", "playbooks/cluster-info.yml"])
def test_a_cluster_tag_matching_no_group_fails_naming_es_asg_tags(sb, play):
    run = playbook(sb, "-e", json.dumps({"es_asg_tags": {"logstack:cluster": "nope"}}), play=play)
    assert run.rc != 0
    text = flat(run.output)
    assert "No Auto Scaling Group" in text and "es_asg_tags" in text, run.output[-2000:]
    assert "outdated nodes: none" not in text
    untouched(sb)


@pytest.fixture(scope="module")
def other_group(sb):
    """A group of another cluster: its instance runs no node of the sandbox's cluster."""
    asg = sb.aws("autoscaling")
    group = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="other-nodes", MinSize=1, MaxSize=1, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": group["LaunchTemplate"]["LaunchTemplateId"], "Version": "$Latest"},
        AvailabilityZones=group["AvailabilityZones"],
        Tags=[{"Key": "logstack:cluster", "Value": "other", "PropagateAtLaunch": True}])
    yield {"logstack:cluster": "other"}
    asg.delete_auto_scaling_group(AutoScalingGroupName="other-nodes", ForceDelete=True)


def test_cluster_info_never_says_nothing_outdated_for_a_cluster_it_could_not_map(sb, other_group):
    run = playbook(sb, "-e", json.dumps({"es_asg_tags": other_group}), play="playbooks/cluster-info.yml")
    assert run.rc != 0
    text = flat(run.output)
    assert "outdated nodes: none" not in text
    assert "outdated nodes: unknown (3 node(s) not mapped to an instance)" in text
    assert "match no instance of the groups other-nodes" in text and "fix es_asg_tags" in text


def test_upgrade_with_groups_whose_instances_are_not_in_the_cluster_is_refused_before_any_change(sb, other_group):
    run = playbook(sb, "-e", json.dumps({"es_asg_tags": other_group}))
    assert run.rc != 0
    text = flat(run.output)
    assert "no node of the cluster" in text and "es_asg_tags (or es_asg_names)" in text, text[-2000:]
    untouched(sb)
    assert [t for t in sb.aws("autoscaling").describe_tags()["Tags"] if t["Key"] == LOCK] == []


@pytest.mark.parametrize("extra", ['reindex_indices=[x]', '{"reindex_indices": ["x"]}'])
def test_reindex_that_matches_no_index_fails(sb, extra):
    run = playbook(sb, "-e", extra, play="playbooks/reindex-es.yml")
    assert run.rc != 0, run.output[-2000:]
    text = flat(run.output)
    assert "0 reindexed" not in text
    assert ("reindex_indices arrived as the string" in text) or ('No index of sandbox matches reindex_indices ["x"]'
                                                                 in text), text[-2000:]


@pytest.mark.parametrize("play, extra, message", [
    ("playbooks/upgrade-es.yml", "upgrade_stratgy=surge", "Unknown variable(s) upgrade_stratgy"),
    ("playbooks/upgrade-es.yml", "upgrade_strategy=fast", "value of upgrade_strategy must be one of"),
    ("playbooks/upgrade-es.yml", "upgrade_max_nodes_out=0", "upgrade_max_nodes_out must be 1 or more"),
    ("playbooks/upgrade-es.yml", '{"upgrade_timeouts": {"drain": -5}}',
     "every value of upgrade_timeouts must be more than 0"),
    ("playbooks/upgrade-es.yml", '{"upgrade_timeouts": {"drian": 5}}', "upgrade_timeouts has unknown key(s) drian"),
    ("playbooks/upgrade-es.yml", "upgrade_accept_data_loss=maybe", "upgrade_accept_data_loss"),
    ("playbooks/reindex-es.yml", "reindex_modee=swap", "Unknown variable(s) reindex_modee"),
    ("playbooks/reindex-es.yml", "reindex_timeout=-1", "reindex_timeout must be more than 0"),
    ("playbooks/reindex-es.yml", "reindex_mode=move", "value of reindex_mode must be one of"),
])
def test_a_bad_variable_fails_naming_it_before_anything_changes(sb, play, extra, message):
    run = playbook(sb, "-e", extra, play=play)
    assert run.rc != 0
    text = flat(run.output)
    assert message in text, text[-2000:]
    assert "Take the rollout lock" not in text and "Reindex logstash" not in text
    untouched(sb)


def test_a_run_that_cannot_reach_elasticsearch_leaves_no_lock(sb):
    run = playbook(sb, "-e", "es_url=http://127.0.0.1:1", "-e", "es_max_retries=0")
    assert run.rc != 0
    assert "Cannot connect to Elasticsearch at http://127.0.0.1:1" in flat(run.output)
    untouched(sb)


def test_a_preflight_refusal_releases_the_lock_and_a_rerun_is_not_blocked(sb):
    # strategy terminate with indices without replicas (small.yml has some): the preflight refuses
    # after the lock was taken.
    run = playbook(sb, "-e", "upgrade_strategy=terminate")
    assert run.rc != 0
    text = flat(run.output)
    assert "Preflight refused, nothing was changed" in text, text[-2000:]
    assert "Release the lock of a run that failed before it changed anything" in text
    untouched(sb)
    rerun = playbook(sb, "-e", "upgrade_strategy=terminate")
    assert "Another rollout holds the lock" not in flat(rerun.output)
