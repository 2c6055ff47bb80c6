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


def admin(proxy, method, spec=None):
    data = json.dumps(spec).encode() if spec is not None else None
    req = urllib.request.Request(f"{proxy}/__fault", data=data, method=method)
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
