"""Test helper: inspects and seeds the moto + stub peers with boto3 (an independent client, so the
provisioner's own SDK code is not used to check itself).

  python inventory.py ENDPOINT list              -> JSON of every AppSync API and IoT policy
  python inventory.py ENDPOINT identity          -> a new Cognito identity id (moto needs one before attach)
  python inventory.py ENDPOINT attached ID       -> JSON list of policy names attached to ID
  python inventory.py ENDPOINT foreign NAME      -> creates an untagged Event API and IoT policy NAME
  python inventory.py ENDPOINT attach NAME ID    -> attaches policy NAME to ID
"""

import json
import sys

import boto3

ENDPOINT, CMD, ARGS = sys.argv[1], sys.argv[2], sys.argv[3:]


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def listing():
    appsync, iot = client("appsync"), client("iot")
    out = {"event_apis": [], "graphql_apis": [], "iot_policies": []}
    for a in appsync.list_apis()["apis"]:
        out["event_apis"].append({
            "id": a["apiId"], "name": a["name"], "tags": a.get("tags") or {},
            "namespaces": sorted(n["name"] for n in appsync.list_channel_namespaces(apiId=a["apiId"])["channelNamespaces"]),
            "api_keys": [k["id"] for k in appsync.list_api_keys(apiId=a["apiId"])["apiKeys"]],
        })
    for a in appsync.list_graphql_apis()["graphqlApis"]:
        api = a["apiId"]
        out["graphql_apis"].append({
            "id": api, "name": a["name"], "tags": a.get("tags") or {},
            "api_keys": [k["id"] for k in appsync.list_api_keys(apiId=api)["apiKeys"]],
            "data_sources": [d["name"] for d in appsync.list_data_sources(apiId=api)["dataSources"]],
            "resolvers": sorted(f'{r["typeName"]}.{r["fieldName"]}'
                                for t in ("Mutation", "Subscription")
                                for r in appsync.list_resolvers(apiId=api, typeName=t)["resolvers"]),
        })
    for p in iot.list_policies()["policies"]:
        name = p["policyName"]
        tags = iot.list_tags_for_resource(resourceArn=p["policyArn"])["tags"]
        versions = iot.list_policy_versions(policyName=name)["policyVersions"]
        out["iot_policies"].append({
            "name": name, "tags": {t["Key"]: t["Value"] for t in tags},
            "versions": len(versions),
            "version_ids": sorted((v["versionId"] for v in versions), key=int),
            "default_version": next(v["versionId"] for v in versions if v["isDefaultVersion"]),
            "default_document": json.loads(iot.get_policy(policyName=name)["policyDocument"]),
        })
    for kind in out.values():
        kind.sort(key=lambda r: (r["name"], r.get("id", "")))
    return out


if CMD == "list":
    print(json.dumps(listing(), indent=1, sort_keys=True))
elif CMD == "identity":
    ci = client("cognito-identity")
    pool = ci.create_identity_pool(IdentityPoolName="groupcasttest", AllowUnauthenticatedIdentities=True)
    print(ci.get_id(IdentityPoolId=pool["IdentityPoolId"])["IdentityId"])
elif CMD == "attached":
    print(json.dumps(sorted(p["policyName"] for p in client("iot").list_attached_policies(target=ARGS[0])["policies"])))
elif CMD == "foreign":
    name = ARGS[0]
    client("appsync").create_api(name=name, eventConfig={
        "authProviders": [{"authType": "AWS_IAM"}], "connectionAuthModes": [{"authType": "AWS_IAM"}],
        "defaultPublishAuthModes": [{"authType": "AWS_IAM"}], "defaultSubscribeAuthModes": [{"authType": "AWS_IAM"}]})
    client("iot").create_policy(policyName=name, policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}))
elif CMD == "attach":
    client("iot").attach_policy(policyName=ARGS[0], target=ARGS[1])
else:
    sys.exit(f"unknown command {CMD}")
