"""The alarms role against a moto server: topics, subscriptions, alarms, idempotence, refusal."""
ENVIRONMENT = {
    "alarms_environment": "staging",
    "alarms_alarm_emails": ["oncall@example.com", "lead@example.com"],
    "alarms_notification_emails": ["team@example.com"],
    "alarms_load_balancers": [
        {"name": "staging-es", "role": "elasticsearch"},
        {"name": "staging-logstash", "role": "logstash"},
    ],
    "alarms_autoscaling_groups": [{"name": "logstack-staging-elastalert", "role": "elastalert"}],
    "alarms_custom": [{
        "name": "logstack-staging-es-5xx",
        "namespace": "AWS/ELB",
        "metric_name": "HTTPCode_Backend_5XX",
        "statistic": "Sum",
        "comparison": "GreaterThanThreshold",
        "threshold": 20,
        "period": 300,
        "dimensions": {"LoadBalancerName": "staging-es"},
    }],
}


def _topics(aws):
    return {arn.rsplit(":", 1)[1]: arn for arn in
            (t["TopicArn"] for t in aws("sns").list_topics()["Topics"])}


def _subscribers(aws, arn):
    subs = aws("sns").list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    return sorted((s["Protocol"], s["Endpoint"]) for s in subs)


def test_alarms_role_creates_topics_subscriptions_and_alarms_second_run_changes_nothing_and_edits_apply(
        run_playbook, aws):
    first = run_playbook("alarms.yml", "alarms", ENVIRONMENT)
    assert first.rc == 0, first.output
    assert first.changed > 0

    topics = _topics(aws)
    assert set(topics) == {"logstack-staging-alarms", "logstack-staging-notifications"}
    assert _subscribers(aws, topics["logstack-staging-alarms"]) == [
        ("email", "lead@example.com"), ("email", "oncall@example.com")]
    assert _subscribers(aws, topics["logstack-staging-notifications"]) == [("email", "team@example.com")]

    alarms = {a["AlarmName"]: a for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]}
    assert set(alarms) == {
        "logstack-staging-elasticsearch-unhealthy-hosts",
        "logstack-staging-elasticsearch-backend-connection-errors",
        "logstack-staging-logstash-unhealthy-hosts",
        "logstack-staging-logstash-backend-connection-errors",
        "logstack-staging-es-5xx",
        "logstack-staging-elastalert-in-service",
    }
    in_service = alarms.pop("logstack-staging-elastalert-in-service")
    assert (in_service["MetricName"], in_service["Statistic"], in_service["TreatMissingData"]) == (
        "GroupInServiceInstances", "Minimum", "breaching")
    for alarm in alarms.values():
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [topics["logstack-staging-alarms"]]
        assert alarm["OKActions"] == [topics["logstack-staging-alarms"]]
    errors = alarms["logstack-staging-logstash-backend-connection-errors"]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/ELB", "BackendConnectionErrors", "Sum")
    assert errors["Dimensions"] == [{"Name": "LoadBalancerName", "Value": "staging-logstash"}]
    assert (errors["ComparisonOperator"], errors["Threshold"]) == ("GreaterThanThreshold", 0.0)
    unhealthy = alarms["logstack-staging-elasticsearch-unhealthy-hosts"]
    assert (unhealthy["MetricName"], unhealthy["Statistic"]) == ("UnHealthyHostCount", "Maximum")
    assert unhealthy["Dimensions"] == [{"Name": "LoadBalancerName", "Value": "staging-es"}]
    assert alarms["logstack-staging-es-5xx"]["Period"] == 300

    second = run_playbook("alarms.yml", "alarms", ENVIRONMENT)
    assert second.rc == 0, second.output
    assert second.changed_tasks == []
    assert second.changed == 0
    # Check mode on the applied environment agrees.
    checked = run_playbook("alarms.yml", "alarms", ENVIRONMENT, check=True)
    assert checked.rc == 0, checked.output
    assert checked.changed_tasks == []

    # Edits apply: a new threshold, and a removed address is unsubscribed.
    changed = dict(ENVIRONMENT, alarms_alarm_emails=["oncall@example.com"])
    changed["alarms_custom"] = [dict(ENVIRONMENT["alarms_custom"][0], threshold=50)]
    third = run_playbook("alarms.yml", "alarms", changed)
    assert third.rc == 0, third.output
    assert sorted(third.changed_tasks) == ["logstack.elk.alarms : Create the alarms topic with its subscriptions",
                                           "logstack.elk.alarms : Create, update or delete the CloudWatch alarms"]
    assert _subscribers(aws, topics["logstack-staging-alarms"]) == [("email", "oncall@example.com")]
    alarm = aws("cloudwatch").describe_alarms(AlarmNames=["logstack-staging-es-5xx"])["MetricAlarms"][0]
    assert alarm["Threshold"] == 50.0


def test_backend_connection_errors_alarm_with_maximum_is_refused_naming_sum(run_playbook, aws):
    before = {a["AlarmName"] for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]}
    bad = dict(ENVIRONMENT, alarms_environment="ci", alarms_custom=[{
        "name": "logstack-ci-logstash-errors-max",
        "namespace": "AWS/ELB",
        "metric_name": "BackendConnectionErrors",
        "statistic": "Maximum",
        "comparison": "GreaterThanThreshold",
        "threshold": 5,
        "dimensions": {"LoadBalancerName": "ci-logstash"},
    }])
    run = run_playbook("alarms.yml", "alarms", bad)
    assert run.rc != 0
    message = " ".join(run.failures)
    assert "logstack-ci-logstash-errors-max" in message
    assert "BackendConnectionErrors is a count metric" in message
    assert "Use statistic Sum" in message
    assert "Traceback" not in run.output
    # Refused before anything was created for the ci environment.
    assert not any(name.startswith("logstack-ci") for name in _topics(aws))
    assert {a["AlarmName"] for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]} == before


def test_non_sum_statistic_on_count_metric_is_applied_when_explicitly_allowed(run_playbook, aws):
    allowed = dict(ENVIRONMENT, alarms_environment="scratch", alarms_alarm_emails=[],
                   alarms_require_subscriptions=False, alarms_load_balancers=[], alarms_custom=[{
                       "name": "logstack-scratch-burst",
                       "namespace": "AWS/ELB",
                       "metric_name": "BackendConnectionErrors",
                       "statistic": "Maximum",
                       "allow_non_sum_statistic": True,
                       "comparison": "GreaterThanThreshold",
                       "threshold": 100,
                       "dimensions": {"LoadBalancerName": "scratch-logstash"},
                   }])
    run = run_playbook("alarms.yml", "alarms", allowed)
    assert run.rc == 0, run.output
    alarm = aws("cloudwatch").describe_alarms(AlarmNames=["logstack-scratch-burst"])["MetricAlarms"][0]
    assert alarm["Statistic"] == "Maximum"
    assert _subscribers(aws, _topics(aws)["logstack-scratch-alarms"]) == []


def test_environment_without_alarm_subscriber_is_refused_when_subscriptions_are_required(run_playbook):
    run = run_playbook("alarms.yml", "alarms", dict(ENVIRONMENT, alarms_environment="production",
                                                     alarms_alarm_emails=[]))
    assert run.rc != 0
    assert "No e-mail address is subscribed to logstack-production-alarms" in " ".join(run.failures)


def test_check_mode_on_a_new_environment_reports_the_plan_and_creates_nothing(run_playbook, aws):
    run = run_playbook("alarms.yml", "alarms", dict(ENVIRONMENT, alarms_environment="preview"), check=True)
    assert run.rc == 0, run.output
    assert run.changed > 0
    assert "logstack-preview-alarms" in run.output and "logstack-preview-logstash-backend-connection-errors" in run.output
    assert not any(name.startswith("logstack-preview") for name in _topics(aws))
    assert not [a for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]
                if a["AlarmName"].startswith("logstack-preview")]
