#!/usr/bin/env python3
"""Creates the demo AWS resources in the local AWS (moto) that the examples discover by tag.

Set "demo" (tag grafana-ha.io/cluster=demo):
  RDS postgres instance grafana-demo-db (db grafana, user grafana, RDS-managed password
  in Secrets Manager), ElastiCache Redis replication group grafana-demo-cache (1 node,
  TLS), EFS file system with mount targets in 3 AZs and an access point /grafana-plugins.
Set "demo-mysql" (tag grafana-ha.io/cluster=demo-mysql):
  RDS mysql instance grafana-mysql-db (password given), ElastiCache memcached cluster
  grafana-mysql-cache, EFS file system with mount targets in 3 AZs.

Idempotent: what already exists is reported and left alone. Talks to $AWS_ENDPOINT_URL
(the test bed's env file sets it); refuses to run without it so it never touches a real
AWS account.

Usage: .venv/bin/python testbed/seed_aws.py [--set demo|demo-mysql|all]
"""

import argparse
import os
import sys

import boto3
from botocore.exceptions import ClientError

TAG_KEY = "grafana-ha.io/cluster"
AZS = ("a", "b", "c")
VPC_NAME = "grafana-ha-testbed"
# Given to the mysql instance; a real setup keeps it in a Secret, never in a script.
MYSQL_PASSWORD = "grafana-demo-mysql-password"


def clients():
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        sys.exit("seed_aws.py: AWS_ENDPOINT_URL is not set; source the test bed's env file first")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    kw = dict(
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    return region, {s: boto3.client(s, **kw) for s in ("ec2", "rds", "elasticache", "efs")}


def report(action, kind, ident, detail=""):
    print(f"{action:8} {kind:28} {ident}{('  ' + detail) if detail else ''}")


def ensure_network(region, ec2):
    """A VPC with one subnet per AZ, found again by its Name tag."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [VPC_NAME]}])["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
        report("exists", "ec2 vpc", vpc_id)
    else:
        vpc_id = ec2.create_vpc(
            CidrBlock="10.42.0.0/16",
            TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": VPC_NAME}]}],
        )["Vpc"]["VpcId"]
        report("created", "ec2 vpc", vpc_id, "10.42.0.0/16")
    subnets = {}
    existing = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    by_az = {s["AvailabilityZone"]: s["SubnetId"] for s in existing}
    for i, z in enumerate(AZS):
        az = f"{region}{z}"
        if az in by_az:
            subnets[az] = by_az[az]
            report("exists", "ec2 subnet", by_az[az], az)
            continue
        sid = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=f"10.42.{i}.0/24",
            AvailabilityZone=az,
            TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": f"{VPC_NAME}-{az}"}]}],
        )["Subnet"]["SubnetId"]
        subnets[az] = sid
        report("created", "ec2 subnet", sid, az)
    return vpc_id, subnets


def ensure_db_subnet_group(rds, subnets):
    name = VPC_NAME
    try:
        rds.describe_db_subnet_groups(DBSubnetGroupName=name)
    except ClientError as e:
        if e.response["Error"]["Code"] != "DBSubnetGroupNotFoundFault":
            raise
        rds.create_db_subnet_group(
            DBSubnetGroupName=name,
            DBSubnetGroupDescription="grafana-ha test bed",
            SubnetIds=list(subnets.values()),
        )
    return name


def ensure_db(rds, ident, tags, **kw):
    try:
        db = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        action = "exists"
    except ClientError as e:
        if e.response["Error"]["Code"] != "DBInstanceNotFound":
            raise
        db = rds.create_db_instance(
            DBInstanceIdentifier=ident,
            DBInstanceClass="db.t4g.micro",
            AllocatedStorage=20,
            Tags=tags,
            **kw,
        )["DBInstance"]
        action = "created"
    ep = db.get("Endpoint") or {}
    secret = (db.get("MasterUserSecret") or {}).get("SecretArn", "")
    detail = f"{db['Engine']} {ep.get('Address', '?')}:{ep.get('Port', '?')} db={db.get('DBName')}"
    if secret:
        detail += f" secret={secret}"
    report(action, "rds db instance", db["DBInstanceArn"], detail)


def ensure_replication_group(ec, ident, tags):
    try:
        rg = ec.describe_replication_groups(ReplicationGroupId=ident)["ReplicationGroups"][0]
        action = "exists"
    except ClientError as e:
        if e.response["Error"]["Code"] != "ReplicationGroupNotFoundFault":
            raise
        rg = ec.create_replication_group(
            ReplicationGroupId=ident,
            ReplicationGroupDescription="grafana-ha demo cache",
            Engine="redis",
            CacheNodeType="cache.t4g.micro",
            NumCacheClusters=1,
            TransitEncryptionEnabled=True,
            Tags=tags,
        )["ReplicationGroup"]
        action = "created"
    ep = ((rg.get("NodeGroups") or [{}])[0].get("PrimaryEndpoint")) or {}
    report(action, "elasticache replication grp", rg["ARN"],
           f"redis {ep.get('Address', '?')}:{ep.get('Port', '?')} tls={rg.get('TransitEncryptionEnabled')}")


def ensure_memcached(ec, ident, tags):
    try:
        cc = ec.describe_cache_clusters(CacheClusterId=ident, ShowCacheNodeInfo=True)["CacheClusters"][0]
        action = "exists"
    except ClientError as e:
        if e.response["Error"]["Code"] != "CacheClusterNotFound":
            raise
        cc = ec.create_cache_cluster(
            CacheClusterId=ident,
            Engine="memcached",
            CacheNodeType="cache.t4g.micro",
            NumCacheNodes=1,
            Tags=tags,
        )["CacheCluster"]
        action = "created"
    # moto 5.2.5 leaves memcached's ConfigurationEndpoint and node endpoints null; the
    # operator must treat that as "not ready yet", as with a real cluster being created.
    ep = cc.get("ConfigurationEndpoint")
    report(action, "elasticache cache cluster", cc["ARN"],
           f"memcached endpoint={ep['Address'] + ':' + str(ep['Port']) if ep else 'null (moto)'}")


def ensure_efs(efs, token, tags, subnets, access_point_path=None):
    found = efs.describe_file_systems(CreationToken=token)["FileSystems"]
    if found:
        fs = found[0]
        action = "exists"
    else:
        fs = efs.create_file_system(
            CreationToken=token,
            PerformanceMode="generalPurpose",
            Encrypted=True,
            Tags=tags + [{"Key": "Name", "Value": token}],
        )
        action = "created"
    fs_id = fs["FileSystemId"]
    report(action, "efs file system", fs["FileSystemArn"], fs_id)
    have = {m["SubnetId"] for m in efs.describe_mount_targets(FileSystemId=fs_id)["MountTargets"]}
    for az, sid in subnets.items():
        if sid in have:
            report("exists", "efs mount target", f"{fs_id} {az}", sid)
            continue
        mt = efs.create_mount_target(FileSystemId=fs_id, SubnetId=sid)
        report("created", "efs mount target", mt["MountTargetId"], f"{fs_id} {az} {mt.get('IpAddress', '')}")
    if access_point_path:
        aps = efs.describe_access_points(FileSystemId=fs_id)["AccessPoints"]
        ap = next((a for a in aps if a.get("RootDirectory", {}).get("Path") == access_point_path), None)
        if ap:
            action = "exists"
        else:
            # Grafana's image runs as uid 472, gid 0.
            ap = efs.create_access_point(
                FileSystemId=fs_id,
                PosixUser={"Uid": 472, "Gid": 0},
                RootDirectory={
                    "Path": access_point_path,
                    "CreationInfo": {"OwnerUid": 472, "OwnerGid": 0, "Permissions": "0755"},
                },
                Tags=tags + [{"Key": "Name", "Value": f"{token}{access_point_path.replace('/', '-')}"}],
            )
            action = "created"
        report(action, "efs access point", ap["AccessPointArn"], f"{fs_id}::{ap['AccessPointId']} {access_point_path}")


def seed_demo(region, c, subnets, group):
    tags = [{"Key": TAG_KEY, "Value": "demo"}]
    print("--- set demo (tag grafana-ha.io/cluster=demo)")
    ensure_db(c["rds"], "grafana-demo-db", tags, Engine="postgres", DBName="grafana",
              MasterUsername="grafana", ManageMasterUserPassword=True, DBSubnetGroupName=group)
    ensure_replication_group(c["elasticache"], "grafana-demo-cache", tags)
    ensure_efs(c["efs"], "grafana-demo-efs", tags, subnets, access_point_path="/grafana-plugins")


def seed_demo_mysql(region, c, subnets, group):
    tags = [{"Key": TAG_KEY, "Value": "demo-mysql"}]
    print("--- set demo-mysql (tag grafana-ha.io/cluster=demo-mysql)")
    ensure_db(c["rds"], "grafana-mysql-db", tags, Engine="mysql", DBName="grafana",
              MasterUsername="grafana", MasterUserPassword=MYSQL_PASSWORD, DBSubnetGroupName=group)
    ensure_memcached(c["elasticache"], "grafana-mysql-cache", tags)
    ensure_efs(c["efs"], "grafana-demo-mysql-efs", tags, subnets)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("demo", "demo-mysql", "all"), default="all", dest="which")
    args = ap.parse_args()
    region, c = clients()
    print(f"seeding {os.environ['AWS_ENDPOINT_URL']} ({region})")
    _, subnets = ensure_network(region, c["ec2"])
    group = ensure_db_subnet_group(c["rds"], subnets)
    if args.which in ("demo", "all"):
        seed_demo(region, c, subnets, group)
    if args.which in ("demo-mysql", "all"):
        seed_demo_mysql(region, c, subnets, group)


if __name__ == "__main__":
    main()
