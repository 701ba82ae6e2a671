"""plugins/module_utils/alarm_rules.py: which alarms are refused and why."""
import pytest

from ansible_collections.logstack.elk.plugins.module_utils.alarm_rules import (
    AlarmRuleError,
    alarm_definitions,
    alarm_problems,
    builtin_alarms,
    builtin_group_alarms,
    is_count_metric,
)


def _alarm(**overrides):
    alarm = {"name": "a", "namespace": "AWS/ELB", "metric_name": "BackendConnectionErrors",
             "statistic": "Sum", "comparison": "GreaterThanThreshold", "threshold": 0}
    alarm.update(overrides)
    return alarm


@pytest.mark.parametrize("metric", ["BackendConnectionErrors", "RequestCount", "HTTPCode_Backend_5XX",
                                    "HTTPCode_ELB_5XX", "HTTPCode_Target_5XX_Count", "TargetConnectionErrorCount",
                                    "TCP_Target_Reset_Count", "SpilloverCount"])
@pytest.mark.parametrize("statistic", ["Maximum", "Average", "Minimum", "SampleCount"])
def test_count_metric_with_any_statistic_but_sum_is_refused_naming_sum(metric, statistic):
    problems = alarm_problems([_alarm(metric_name=metric, statistic=statistic)])
    assert len(problems) == 1
    assert "%s is a count metric" % metric in problems[0]
    assert "Use statistic Sum" in problems[0]
    assert "allow_non_sum_statistic" in problems[0]


@pytest.mark.parametrize("metric", ["UnHealthyHostCount", "HealthyHostCount", "SurgeQueueLength", "Latency"])
def test_gauges_are_not_count_metrics_despite_count_in_the_name(metric):
    assert not is_count_metric({"metric_name": metric})
    assert alarm_problems([_alarm(metric_name=metric, statistic="Maximum")]) == []


def test_count_metric_with_sum_is_accepted():
    assert alarm_problems([_alarm()]) == []


def test_non_sum_statistic_is_accepted_when_the_alarm_allows_it_explicitly():
    assert alarm_problems([_alarm(statistic="Maximum", allow_non_sum_statistic=True)]) == []


def test_own_metric_declared_as_count_is_checked_like_the_built_in_ones():
    problems = alarm_problems([_alarm(namespace="Logstack", metric_name="DroppedEvents",
                                      statistic="Average", count_metric=True)])
    assert "DroppedEvents is a count metric" in problems[0]
    assert alarm_problems([_alarm(namespace="Logstack", metric_name="DroppedEvents", statistic="Average")]) == []


def test_every_problem_of_every_alarm_is_reported_at_once():
    problems = alarm_problems([
        _alarm(name="one", statistic="Maximum"),
        _alarm(name="two", comparison=">", period=45, evaluation_periods=0, treat_missing_data="zero"),
        _alarm(name="two"),
        {"name": "three", "namespace": "AWS/ELB"},
        _alarm(name="four", threshold="lots", colour="red"),
    ])
    text = "\n".join(problems)
    assert "Alarm 'one': BackendConnectionErrors is a count metric" in text
    assert "Alarm 'two': comparison '>'" in text
    assert "Alarm 'two': period 45" in text
    assert "Alarm 'two': evaluation_periods 0" in text
    assert "Alarm 'two': treat_missing_data 'zero'" in text
    assert "Alarm 'two' is defined twice" in text
    assert "Alarm 'three' lacks metric_name, statistic, comparison, threshold." in text
    assert "Alarm 'four': threshold 'lots' is not a number." in text
    assert "Alarm 'four' has unknown keys colour" in text


def test_alarm_to_delete_needs_only_its_name():
    assert alarm_problems([{"name": "old", "state": "absent"}]) == []
    assert alarm_definitions([{"name": "old", "state": "absent"}]) == [
        {"name": "old", "state": "absent", "dimensions": {}, "period": 60, "evaluation_periods": 1,
         "treat_missing_data": "notBreaching", "description": "", "unit": None}]


def test_definitions_fill_defaults_and_send_alarm_and_ok_actions_to_the_topic():
    [alarm] = alarm_definitions([_alarm(threshold="5", dimensions={"LoadBalancerName": "es"},
                                        allow_non_sum_statistic=False)],
                                ["arn:topic"], ["arn:topic"])
    assert alarm["treat_missing_data"] == "notBreaching"
    assert alarm["threshold"] == 5.0
    assert alarm["alarm_actions"] == ["arn:topic"] and alarm["ok_actions"] == ["arn:topic"]
    assert (alarm["period"], alarm["evaluation_periods"]) == (60, 1)
    assert "allow_non_sum_statistic" not in alarm


def test_definitions_refuse_the_whole_list_when_one_alarm_is_wrong():
    with pytest.raises(AlarmRuleError, match="Use statistic Sum"):
        alarm_definitions([_alarm(name="fine"), _alarm(name="bad", statistic="Maximum")])


def test_builtin_alarms_use_maximum_for_unhealthy_hosts_and_sum_for_backend_connection_errors():
    alarms = builtin_alarms([{"name": "prod-es", "role": "elasticsearch"},
                             {"name": "prod-ls", "role": "logstash", "unhealthy_hosts": False}], "logstack-production")
    by_name = {a["name"]: a for a in alarms}
    assert sorted(by_name) == ["logstack-production-elasticsearch-backend-connection-errors",
                               "logstack-production-elasticsearch-unhealthy-hosts",
                               "logstack-production-logstash-backend-connection-errors"]
    unhealthy = by_name["logstack-production-elasticsearch-unhealthy-hosts"]
    assert (unhealthy["metric_name"], unhealthy["statistic"], unhealthy["threshold"]) == ("UnHealthyHostCount", "Maximum", 0)
    errors = by_name["logstack-production-logstash-backend-connection-errors"]
    assert (errors["metric_name"], errors["statistic"]) == ("BackendConnectionErrors", "Sum")
    assert errors["dimensions"] == {"LoadBalancerName": "prod-ls"}
    assert all(a["treat_missing_data"] == "notBreaching" for a in alarms)
    # The built-ins pass their own checks.
    assert alarm_problems(alarms) == []


def test_load_balancer_without_name_is_refused():
    with pytest.raises(AlarmRuleError, match="needs a name"):
        builtin_alarms([{"role": "logstash"}], "p")


def test_group_alarm_watches_in_service_instances_staying_below_the_minimum():
    [alarm] = builtin_group_alarms([{"name": "logstack-ci-elastalert", "role": "elastalert"}], "logstack-ci")
    assert alarm["name"] == "logstack-ci-elastalert-in-service"
    assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == (
        "AWS/AutoScaling", "GroupInServiceInstances", "Minimum")
    assert (alarm["comparison"], alarm["threshold"], alarm["evaluation_periods"]) == ("LessThanThreshold", 1, 10)
    assert alarm["dimensions"] == {"AutoScalingGroupName": "logstack-ci-elastalert"}
    # No metrics from the group at all is as bad as zero instances.
    assert alarm["treat_missing_data"] == "breaching"
    assert alarm_problems([alarm]) == []
