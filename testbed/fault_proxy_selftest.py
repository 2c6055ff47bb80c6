#!/usr/bin/env python3
"""Self-test of fault_proxy.py with boto3: the faults it injects must look to an AWS SDK
like the real service's throttling and server errors, and everything else must pass
through to moto unchanged.

Uses FAULT_PROXY_URL and MOTO_URL when set (a running test bed); otherwise starts its own
moto_server and fault proxy on free loopback ports and stops them afterwards.
Run with the test bed's venv: .venv/bin/python testbed/fault_proxy_selftest.py
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            if time.time() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout}s")
            time.sleep(0.1)


def admin(proxy, method, spec=None, path="/__fault"):
    data = json.dumps(spec).encode() if spec is not None else None
    req = urllib.request.Request(f"{proxy}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def client(service, endpoint, attempts=1):
    # attempts=1 shows the raw fault; more shows whether the SDK retries it.
    cfg = Config(retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=5, read_timeout=10)
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=cfg,
    )


def expect_error(fn, code, status):
    try:
        fn()
    except ClientError as e:
        got_code = e.response["Error"]["Code"]
        got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (got_code, got_status) == (code, status), f"got {got_code}/{got_status}, want {code}/{status}"
        return e
    raise AssertionError(f"expected {code}/{status}, call succeeded")


def run_tests(proxy):
    rds = client("rds", proxy)
    efs = client("efs", proxy)
    sm = client("secretsmanager", proxy)
    ec = client("elasticache", proxy)

    def t_passthrough():
        admin(proxy, "DELETE")
        rds.describe_db_instances()
        arn = sm.create_secret(Name=f"selftest-{time.time_ns()}", SecretString="s3cret")["ARN"]
        assert sm.get_secret_value(SecretId=arn)["SecretString"] == "s3cret"
        efs.describe_file_systems()
        ec.describe_replication_groups()
        st = admin(proxy, "GET")
        for svc in ("rds", "secretsmanager", "elasticfilesystem", "elasticache"):
            assert st["counters"][svc]["requests"] >= 1, st
            assert st["counters"][svc]["faults"] == 0, st

    def t_throttle_rds_query_xml():
        admin(proxy, "POST", {"mode": "throttle", "count": 1, "service": "rds"})
        e = expect_error(rds.describe_db_instances, "Throttling", 400)
        assert e.response["Error"].get("Type") == "Sender", e.response
        rds.describe_db_instances()  # count 1 used up: passes again
        assert admin(proxy, "GET")["mode"] == "none"

    def t_throttle_is_retried_by_sdk():
        admin(proxy, "DELETE")
        admin(proxy, "POST", {"mode": "throttle", "count": 2, "service": "rds"})
        t0 = time.time()
        client("rds", proxy, attempts=3).describe_db_instances()
        st = admin(proxy, "GET")
        assert st["counters"]["rds"] == {"requests": 3, "faults": 2}, st
        assert time.time() - t0 < 30

    def t_throttle_elasticache():
        admin(proxy, "POST", {"mode": "throttle", "count": 1, "service": "elasticache"})
        expect_error(ec.describe_replication_groups, "Throttling", 400)

    def t_throttle_efs_rest_json():
        admin(proxy, "POST", {"mode": "throttle", "count": 1, "service": "elasticfilesystem"})
        e = expect_error(efs.describe_file_systems, "ThrottlingException", 429)
        assert e.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"

    def t_throttle_secretsmanager_json():
        admin(proxy, "POST", {"mode": "throttle", "count": 1, "service": "secretsmanager"})
        expect_error(sm.list_secrets, "ThrottlingException", 400)

    def t_error500_shapes():
        for fn in (rds.describe_db_instances, efs.describe_file_systems, sm.list_secrets,
                   ec.describe_cache_clusters):
            admin(proxy, "POST", {"mode": "error500", "count": 1})
            expect_error(fn, "InternalFailure", 500)

    def t_service_filter():
        admin(proxy, "POST", {"mode": "throttle", "count": -1, "service": "rds"})
        sm.list_secrets()  # another service passes
        efs.describe_file_systems()
        expect_error(rds.describe_db_instances, "Throttling", 400)
        expect_error(rds.describe_db_instances, "Throttling", 400)  # -1: until changed
        admin(proxy, "POST", {"mode": "none"})
        rds.describe_db_instances()

    def t_delay():
        admin(proxy, "POST", {"mode": "delay", "count": 1, "delay_seconds": 0.7})
        t0 = time.time()
        sm.list_secrets()
        slow = time.time() - t0
        t0 = time.time()
        sm.list_secrets()
        fast = time.time() - t0
        assert slow >= 0.7 and fast < 0.7, (slow, fast)

    def t_bad_admin_request():
        try:
            admin(proxy, "POST", {"mode": "explode"})
        except urllib.error.HTTPError as e:
            assert e.code == 400
        else:
            raise AssertionError("unknown mode accepted")

    def endpoints(method, spec=None):
        return admin(proxy, method, spec, path="/__endpoints")

    def db_endpoint(db_id):
        db = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
        return db["Endpoint"]["Address"], db["Endpoint"]["Port"]

    def t_endpoint_map_survives_faults():
        admin(proxy, "DELETE")
        endpoints("DELETE")
        db_id = f"selftest-ep-{time.time_ns()}"
        rds.create_db_instance(DBInstanceIdentifier=db_id, DBInstanceClass="db.t3.micro", Engine="postgres",
                               AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="password1")
        moto_host, moto_port = db_endpoint(db_id)
        assert moto_host.startswith(db_id + "."), moto_host
        st = endpoints("POST", {"service": "rds", "rewrites": [
            [rf"<Address>{re.escape(moto_host)}</Address>\s*<Port>{moto_port}</Port>",
             "<Address>127.0.0.1</Address><Port>15432</Port>"]]})
        assert len(st["rewrites"]) == 1 and st["rewrites"][0]["service"] == "rds", st
        assert db_endpoint(db_id) == ("127.0.0.1", 15432)
        # A fault answers itself (not rewritten); once it is used up the map applies again.
        admin(proxy, "POST", {"mode": "throttle", "count": 1, "service": "rds"})
        expect_error(rds.describe_db_instances, "Throttling", 400)
        assert db_endpoint(db_id) == ("127.0.0.1", 15432)
        # Clearing the faults keeps the map; the delay mode forwards through it too.
        admin(proxy, "DELETE")
        admin(proxy, "POST", {"mode": "delay", "count": 1, "delay_seconds": 0.2})
        assert db_endpoint(db_id) == ("127.0.0.1", 15432)
        assert endpoints("GET")["rewrites"][0]["replacement"].startswith("<Address>127.0.0.1")
        # A fault rewrite applies after the map (here: the database is "being created").
        admin(proxy, "POST", {"mode": "rewrite", "count": 1, "service": "rds",
                              "rewrites": [[r"<Endpoint>.*?</Endpoint>", ""]]})
        db = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
        assert "Endpoint" not in db, db
        assert db_endpoint(db_id) == ("127.0.0.1", 15432)
        # Other services are not touched by a map scoped to rds; DELETE removes it.
        sm.list_secrets()
        assert endpoints("DELETE")["rewrites"] == []
        assert db_endpoint(db_id) == (moto_host, moto_port)

    def t_endpoint_map_inserts_memcached_endpoint():
        endpoints("DELETE")
        cc_id = f"selftest-mc-{time.time_ns() % 10**9}"
        ec.create_cache_cluster(CacheClusterId=cc_id, Engine="memcached", CacheNodeType="cache.t3.micro",
                                NumCacheNodes=1)
        cluster = ec.describe_cache_clusters(CacheClusterId=cc_id)["CacheClusters"][0]
        assert "ConfigurationEndpoint" not in cluster, cluster  # moto: null
        endpoints("POST", {"rewrites": [[
            rf"(<CacheClusterId>{cc_id}</CacheClusterId>)",
            r"\1<ConfigurationEndpoint><Address>127.0.0.1</Address><Port>11311</Port></ConfigurationEndpoint>"]]})
        cluster = ec.describe_cache_clusters(CacheClusterId=cc_id)["CacheClusters"][0]
        assert cluster["ConfigurationEndpoint"] == {"Address": "127.0.0.1", "Port": 11311}, cluster
        # "replace" drops the earlier rewrites.
        endpoints("POST", {"replace": True, "rewrites": [["no-such-text", "x"]]})
        cluster = ec.describe_cache_clusters(CacheClusterId=cc_id)["CacheClusters"][0]
        assert "ConfigurationEndpoint" not in cluster, cluster
        endpoints("DELETE")

    def t_endpoint_map_bad_requests():
        for bad in ({"rewrites": [["(unclosed", "x"]]}, {"rewrites": []}, {"rewrites": [["only-one"]]}, []):
            try:
                endpoints("POST", bad)
            except urllib.error.HTTPError as e:
                assert e.code == 400, (bad, e.code)
            else:
                raise AssertionError(f"accepted {bad!r}")
        assert endpoints("GET")["rewrites"] == []

    def t_rate_limit_token_bucket_on_rds():
        # A token bucket, as AWS allots RDS describe calls per account (12/s there; a slow
        # rate here, so that the self-test's own pace cannot refill it).
        admin(proxy, "DELETE")
        admin(proxy, "POST", {"mode": "rate_limit", "rate_per_second": 2, "burst": 3, "service": "rds"})
        throttled = 0
        t0 = time.monotonic()
        for _ in range(20):
            try:
                rds.describe_db_instances()
            except ClientError as e:
                assert e.response["Error"]["Code"] == "Throttling", e.response
                throttled += 1
        elapsed = time.monotonic() - t0
        passed = 20 - throttled
        assert passed <= 3 + 2 * elapsed + 1, (passed, elapsed)
        assert passed >= 3, (passed, elapsed)
        ec.describe_replication_groups()  # other services are not limited
        st = admin(proxy, "GET")
        assert st["counters"]["rds"] == {"requests": 20, "faults": throttled}, st
        assert st["counters"]["elasticache"]["faults"] == 0, st
        assert st["operations"]["rds"] == {"DescribeDBInstances": 20}, st
        assert st["rate_per_second"] == 2, st
        # Paced under the rate, nothing is throttled; the mode stays until changed.
        time.sleep(1.5)
        for _ in range(3):
            rds.describe_db_instances()
            time.sleep(0.6)
        assert admin(proxy, "GET")["counters"]["rds"]["faults"] == throttled
        for bad in ({"mode": "rate_limit"}, {"mode": "rate_limit", "rate_per_second": 5, "burst": 0}):
            try:
                admin(proxy, "POST", bad)
            except urllib.error.HTTPError as e:
                assert e.code == 400, (bad, e.code)
            else:
                raise AssertionError(f"accepted {bad!r}")
        admin(proxy, "DELETE")

    def t_operations_are_counted():
        admin(proxy, "DELETE")
        rds.describe_db_clusters()
        efs.describe_file_systems()
        sm.list_secrets()
        ops = admin(proxy, "GET")["operations"]
        assert ops["rds"] == {"DescribeDBClusters": 1}, ops
        assert ops["secretsmanager"] == {"ListSecrets": 1}, ops
        assert list(ops["elasticfilesystem"].values()) == [1], ops

    tests = [v for k, v in locals().items() if k.startswith("t_")]
    passed = failed = 0
    for t in tests:
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    admin(proxy, "DELETE")
    admin(proxy, "DELETE", path="/__endpoints")
    return passed, failed


def main():
    procs = []
    proxy = os.environ.get("FAULT_PROXY_URL")
    try:
        if not proxy:
            bindir = os.path.dirname(sys.executable)
            moto_port, proxy_port = free_port(), free_port()
            moto = f"http://127.0.0.1:{moto_port}"
            proxy = f"http://127.0.0.1:{proxy_port}"
            log = open(os.devnull, "w")
            procs.append(subprocess.Popen(
                [os.path.join(bindir, "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                stdout=log, stderr=log))
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(HERE, "fault_proxy.py"), "--port", str(proxy_port), "--upstream", moto],
                stdout=log, stderr=log))
            wait_http(f"{moto}/moto-api/")
            wait_http(f"{proxy}/__fault")
        passed, failed = run_tests(proxy)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    print(f"fault_proxy: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
