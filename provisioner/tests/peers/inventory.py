"""Test helper: inspects and seeds the moto + stub peers with boto3 (an independent client, so the
provisioner's own SDK code is not used to check itself).

  python inventory.py ENDPOINT list              -> JSON of every AppSync API and IoT policy
  python inventory.py ENDPOINT identity          -> a new Cognito identity id (moto needs one before attach)
  python inventory.py ENDPOINT attached ID       -> JSON list of policy names attached to ID
  python inventory.py ENDPOINT foreign NAME      -> creates an untagged Event API and IoT policy NAME
  python inventory.py ENDPOINT attach NAME ID    -> attaches policy NAME to ID
  python inventory.py ENDPOINT function NAME     -> deploys a Lambda function NAME (a stand-in for the authorizer)
  python inventory.py ENDPOINT role NAME         -> creates an untagged IAM role NAME (someone else's)
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
    iam, lam = client("iam"), client("lambda")
    out["iam_roles"] = []
    for r in iam.list_roles()["Roles"]:
        name = r["RoleName"]
        tags = iam.list_role_tags(RoleName=name)["Tags"]
        out["iam_roles"].append({
            "name": name, "tags": {t["Key"]: t["Value"] for t in tags},
            "policies": sorted(iam.list_role_policies(RoleName=name)["PolicyNames"]),
        })
    out["functions"] = []
    for f in lam.list_functions()["Functions"]:
        try:
            statements = json.loads(lam.get_policy(FunctionName=f["FunctionName"])["Policy"])["Statement"]
        except lam.exceptions.ResourceNotFoundException:
            statements = []
        out["functions"].append({"name": f["FunctionName"], "statements": [
            {"sid": s["Sid"], "source_arn": s.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")}
            for s in statements]})
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
elif CMD == "function":
    iam = client("iam")
    role = iam.create_role(RoleName=f"{ARGS[0]}-test-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]
    import io, zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    client("lambda").create_function(FunctionName=ARGS[0], Runtime="provided.al2023", Role=role["Arn"],
                                     Handler="bootstrap", Code={"ZipFile": buf.getvalue()})
elif CMD == "role":
    client("iam").create_role(RoleName=ARGS[0], AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": []}))
else:
    sys.exit(f"unknown command {CMD}")
