"""An SQS queue subscribed to an SNS topic on a moto server: what a run published, in order."""
import json
import uuid


def subscribe(client, topic_name):
    """client(service) -> boto3 client on the moto server; returns a function reading the messages so far."""
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name=topic_name)["TopicArn"]
    queue = sqs.create_queue(QueueName="notify-%s" % uuid.uuid4().hex[:8])["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def received():
        out = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                return out
            for m in batch:
                body = json.loads(m["Body"])
                event, job, _of, cluster = body["Subject"][1:].replace("] ", " ", 1).split(" ", 3)
                out.append({"subject": body["Subject"], "message": body.get("Message"), "event": event, "job": job,
                            "cluster": cluster})
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return received
