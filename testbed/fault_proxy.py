#!/usr/bin/env python3
"""A fault-injecting HTTP reverse proxy for the local AWS (moto).

moto answers every call correctly and at once; it cannot throttle, fail or stall. This
proxy sits in front of it and, when told to, answers the next requests itself with the
error an AWS service would send, or delays them, so the operator's retry and backoff
paths can be tested against the real SDK. Everything else is forwarded verbatim.

Standard library only, one thread per connection.

Admin API (on the proxy's own port):
  POST /__fault  {"mode": "none"|"throttle"|"error500"|"delay"|"rewrite"|"rate_limit"|
                          "reset"|"access_denied"|"expired_token",
                  # reset: the connection is closed with a TCP RST, no answer;
                  # access_denied / expired_token: the error a service sends when the
                  # caller's credentials lack the permission, or have expired
                  "count": N,              # next N matching requests; -1 = until changed
                  "delay_seconds": 1.5,    # for "delay"
                  "rewrites": [[regex, replacement], ...],  # for "rewrite": applied to
                                           # moto's response body, e.g. to show a database
                                           # as still being created (no endpoint yet)
                  "rate_per_second": 12,   # for "rate_limit": a token bucket refilled
                  "burst": 12,             # at this rate, holding at most burst tokens;
                                           # a request finding it empty is throttled as
                                           # AWS does (count does not apply)
                  "service": "rds"}        # optional: substring of the service name
                                           # (SigV4 credential scope) or Host header
  GET  /__fault  -> current fault, per-service counters (requests, faults) and
                    "operations": requests by service and operation (the proxy's own
                    count of AWS calls)
  DELETE /__fault -> mode none and counters cleared

  POST /__endpoints {"rewrites": [[regex, replacement], ...],
                     "service": "rds"}     # optional, as for faults
       Adds rewrites that apply to every forwarded response body from now on, whatever
       the fault: an endpoint map, so that moto's Describe* answers name real servers
       (moto cannot set an endpoint's host or port). Kept across fault changes and
       DELETE /__fault; "replace": true drops the earlier ones first.
  GET  /__endpoints -> the rewrites in force
  DELETE /__endpoints -> all of them removed

Usage: fault_proxy.py --port PORT --upstream http://127.0.0.1:MOTO_PORT
"""

import argparse
import socket
import struct
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Headers that belong to one hop, never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    # The proxy already answered "100 Continue" to the client itself.
    "expect",
}

# Credential=AKID/20250101/us-east-1/rds/aws4_request
SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")

# Wire protocol per SigV4 service name; decides the shape of an injected error.
PROTOCOLS = {
    "rds": "query",
    "elasticache": "query",
    "sts": "query",
    "iam": "query",
    "ec2": "ec2",
    "elasticfilesystem": "rest-json",
    "secretsmanager": "json",
    "tagging": "json",
}


class FaultState:
    """The current fault and the counters, shared by all handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.mode = "none"
        self.remaining = 0
        self.delay_seconds = 0.0
        self.service = None
        self.rewrites = []
        self.counters = {}
        self.operations = {}
        self.rate = 0.0
        self.burst = 0.0
        self.tokens = 0.0
        self.refilled_at = time.monotonic()

    def configure(self, spec):
        mode = spec.get("mode", "none")
        if mode not in ("none", "throttle", "error500", "delay", "rewrite", "rate_limit") + CREDENTIAL_AND_RESET_MODES:
            raise ValueError(f"unknown mode {mode!r}")
        rewrites = [(re.compile(p, re.DOTALL), r) for p, r in spec.get("rewrites", [])]
        if mode == "rewrite" and not rewrites:
            raise ValueError("mode rewrite needs rewrites: [[regex, replacement], ...]")
        count = int(spec.get("count", -1))
        delay = float(spec.get("delay_seconds", 0.0))
        service = spec.get("service") or None
        if mode == "delay" and delay <= 0:
            raise ValueError("mode delay needs delay_seconds > 0")
        rate = float(spec.get("rate_per_second", 0.0))
        burst = float(spec.get("burst", rate))
        if mode == "rate_limit" and (rate <= 0 or burst < 1):
            raise ValueError("mode rate_limit needs rate_per_second > 0 and burst >= 1")
        with self.lock:
            self.rate = rate
            self.burst = burst
            self.tokens = burst
            self.refilled_at = time.monotonic()
            self.mode = mode if count != 0 else "none"
            self.remaining = count if self.mode != "none" else 0
            self.delay_seconds = delay
            self.rewrites = rewrites
            self.service = service
            if spec.get("reset_counters"):
                self.counters = {}
                self.operations = {}

    def snapshot(self):
        with self.lock:
            return {
                "mode": self.mode,
                "remaining": self.remaining,
                "delay_seconds": self.delay_seconds,
                "service": self.service,
                "rewrites": [[p.pattern, r] for p, r in self.rewrites],
                "rate_per_second": self.rate,
                "burst": self.burst,
                "counters": json.loads(json.dumps(self.counters)),
                "operations": json.loads(json.dumps(self.operations)),
            }

    def take(self, service, host, operation=""):
        """Counts a request; returns the fault to apply to it (mode, delay) or None."""
        with self.lock:
            c = self.counters.setdefault(service, {"requests": 0, "faults": 0})
            c["requests"] += 1
            ops = self.operations.setdefault(service, {})
            ops[operation] = ops.get(operation, 0) + 1
            if self.mode == "none":
                return None
            if self.service and self.service not in service and self.service not in host:
                return None
            if self.mode == "rate_limit":
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.refilled_at) * self.rate)
                self.refilled_at = now
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return None
                c["faults"] += 1
                return ("throttle", 0.0)
            fault = (self.mode, self.delay_seconds if self.mode != "rewrite" else self.rewrites)
            c["faults"] += 1
            if self.remaining > 0:
                self.remaining -= 1
                if self.remaining == 0:
                    self.mode = "none"
            return fault


class EndpointMap:
    """Rewrites applied to every forwarded response body, independent of the faults."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rewrites = []  # (service or None, compiled regex, replacement)

    def add(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("want a JSON object with rewrites")
        pairs = spec.get("rewrites")
        if not pairs or not isinstance(pairs, list):
            raise ValueError("rewrites: want [[regex, replacement], ...]")
        service = spec.get("service") or None
        compiled = []
        for pair in pairs:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(x, str) for x in pair):
                raise ValueError(f"rewrite {pair!r}: want [regex, replacement]")
            try:
                pattern = re.compile(pair[0], re.DOTALL)
            except re.error as e:
                raise ValueError(f"rewrite {pair[0]!r}: {e}") from e
            compiled.append((service, pattern, pair[1]))
        with self.lock:
            if spec.get("replace"):
                self.rewrites = []
            self.rewrites.extend(compiled)

    def clear(self):
        with self.lock:
            self.rewrites = []

    def snapshot(self):
        with self.lock:
            return {"rewrites": [{"service": s, "regex": p.pattern, "replacement": r} for s, p, r in self.rewrites]}

    def matching(self, service, host):
        """The (regex, replacement) pairs that apply to a request for service/host."""
        with self.lock:
            return [(p, r) for s, p, r in self.rewrites if s is None or s in service or s in host]


def service_of(headers):
    """The AWS service a request is for: from the SigV4 scope, else from its headers."""
    m = SCOPE_RE.search(headers.get("Authorization", ""))
    if m:
        return m.group(1)
    target = headers.get("X-Amz-Target", "")
    if target.startswith("secretsmanager."):
        return "secretsmanager"
    return "unknown"


def operation_of(headers, body, path):
    """The AWS operation of a request: Action= of the query protocol, the X-Amz-Target of
    the JSON protocol, else the method and path (rest-json: EFS)."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    text = body.decode("utf-8", "replace") if body else ""
    query = urllib.parse.parse_qs(text) if "Action=" in text else {}
    if "Action" in query:
        return query["Action"][0]
    return re.sub(r"/fs-[0-9a-f]+|/fsap-[0-9a-f]+", "/{id}", path.split("?", 1)[0])


def protocol_of(service, content_type):
    """The wire protocol of a request, which decides the shape of an injected error."""
    if service in PROTOCOLS:
        return PROTOCOLS[service]
    # Unknown service: guess from what the client sent.
    if "x-amz-json" in content_type:
        return "json"
    if "x-www-form-urlencoded" in content_type:
        return "query"
    return "rest-json"


def error_response(protocol, status, code, message, fault_type):
    """(status, headers, body) of an AWS error in the given wire protocol."""
    request_id = str(uuid.uuid4())
    if protocol == "query":
        body = (
            "<ErrorResponse>"
            f"<Error><Type>{fault_type}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body
    if protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message})
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id}
        return status, headers, body
    # rest-json (EFS): the SDK reads the code from x-amzn-ErrorType; EFS error bodies
    # carry ErrorCode and Message.
    body = json.dumps({"ErrorCode": code, "Message": message})
    headers = {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": code,
        "x-amzn-RequestId": request_id,
    }
    return status, headers, body


def throttle_response(protocol):
    """What each protocol's services send when they throttle a caller."""
    if protocol == "rest-json":
        return error_response(protocol, 429, "ThrottlingException", "Rate exceeded", "Sender")
    if protocol == "json":
        return error_response(protocol, 400, "ThrottlingException", "Rate exceeded", "Sender")
    if protocol == "ec2":
        return error_response(protocol, 503, "RequestLimitExceeded", "Request limit exceeded.", "Sender")
    return error_response(protocol, 400, "Throttling", "Rate exceeded", "Sender")


def internal_error_response(protocol):
    message = "The request processing has failed because of an unknown error (injected)."
    return error_response(protocol, 500, "InternalFailure", message, "Receiver")


# Faults added for issue 12: credentials that stop working, and connection resets.
CREDENTIAL_AND_RESET_MODES = ("reset", "access_denied", "expired_token")


def credential_error_response(protocol, mode):
    """What a service sends when the caller's credentials lack a permission (403
    AccessDenied; EFS and JSON services say AccessDeniedException) or have expired (400/403
    ExpiredToken; JSON services say ExpiredTokenException)."""
    json_style = protocol in ("json", "rest-json")
    if mode == "access_denied":
        code = "AccessDeniedException" if json_style else "AccessDenied"
        message = "User: arn:aws:iam::123456789012:role/grafana-ha-operator is not authorized to perform this action (injected)"
        return error_response(protocol, 403, code, message, "Sender")
    code = "ExpiredTokenException" if json_style else "ExpiredToken"
    return error_response(protocol, 400 if protocol == "query" else 403, code,
                          "The security token included in the request is expired (injected)", "Sender")


def reset_connection(handler):
    """Closes the client's connection with a TCP RST (SO_LINGER 0) and no answer."""
    try:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    handler.close_connection = True
    try:
        handler.connection.close()
    except OSError:
        pass


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps the SDK's connections alive, as a real endpoint would.
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy/1"
    state: FaultState = None  # set in main()
    endpoints: EndpointMap = None
    upstream: urllib.parse.SplitResult = None

    def log_message(self, fmt, *args):  # one line per request on stderr, with service
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer section ends with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, headers, body):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _admin(self, body):
        if self.command == "GET":
            return self._send(200, {"Content-Type": "application/json"}, json.dumps(self.state.snapshot()))
        if self.command == "DELETE":
            with self.state.lock:
                self.state.reset()
            return self._send(200, {"Content-Type": "application/json"}, json.dumps(self.state.snapshot()))
        if self.command == "POST":
            try:
                self.state.configure(json.loads(body or b"{}"))
            except (ValueError, TypeError) as e:
                return self._send(400, {"Content-Type": "application/json"}, json.dumps({"error": str(e)}))
            return self._send(200, {"Content-Type": "application/json"}, json.dumps(self.state.snapshot()))
        return self._send(405, {"Content-Type": "text/plain"}, "method not allowed\n")

    def _endpoints_admin(self, body):
        json_headers = {"Content-Type": "application/json"}
        if self.command == "DELETE":
            self.endpoints.clear()
        elif self.command == "POST":
            try:
                self.endpoints.add(json.loads(body or b"{}"))
            except (ValueError, TypeError) as e:
                return self._send(400, json_headers, json.dumps({"error": str(e)}))
        elif self.command != "GET":
            return self._send(405, {"Content-Type": "text/plain"}, "method not allowed\n")
        return self._send(200, json_headers, json.dumps(self.endpoints.snapshot()))

    def _handle(self):
        body = self._read_body()
        admin_path = self.path.split("?", 1)[0].rstrip("/")
        if admin_path == "/__fault":
            return self._admin(body)
        if admin_path == "/__endpoints":
            return self._endpoints_admin(body)
        service = service_of(self.headers)
        host = self.headers.get("Host", "")
        protocol = protocol_of(service, self.headers.get("Content-Type", ""))
        # The endpoint map first: it describes the world; a fault's rewrites then change
        # that world's answer (e.g. drop the endpoint while "creating").
        rewrites = self.endpoints.matching(service, host)
        fault = self.state.take(service, host, operation_of(self.headers, body, self.path))
        if fault:
            mode, delay = fault
            self.log_message("injecting %s for %s %s (%s)", mode, self.command, self.path, service)
            if mode == "throttle":
                return self._send(*throttle_response(protocol))
            if mode == "error500":
                return self._send(*internal_error_response(protocol))
            if mode in ("access_denied", "expired_token"):
                return self._send(*credential_error_response(protocol, mode))
            if mode == "reset":
                return reset_connection(self)
            if mode == "delay":
                time.sleep(delay)
            if mode == "rewrite":
                return self._forward_rewritten(body, rewrites + delay)
        if rewrites:
            return self._forward_rewritten(body, rewrites)
        self._forward(body)

    def _forward_rewritten(self, body, rewrites):
        """Forwards to moto and rewrites the whole response body before answering (a body
        that is not UTF-8 passes unchanged)."""
        up = self.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            headers["Accept-Encoding"] = "identity"
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
            try:
                data = raw.decode("utf-8")
            except UnicodeDecodeError:
                return self._send(resp.status, out, raw)
            for pattern, replacement in rewrites:
                data = pattern.sub(replacement, data)
            return self._send(resp.status, out, data)
        except OSError as e:
            return self._send(502, {"Content-Type": "text/plain"}, f"fault_proxy: upstream error: {e}\n")
        except (re.error, IndexError) as e:  # a replacement naming a group the regex lacks
            return self._send(502, {"Content-Type": "text/plain"}, f"fault_proxy: rewrite failed: {e}\n")
        finally:
            conn.close()

    def _forward(self, body):
        up = self.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
        except OSError as e:
            conn.close()
            return self._send(502, {"Content-Type": "text/plain"}, f"fault_proxy: upstream error: {e}\n")
        try:
            self.send_response(resp.status, resp.reason)
            length = resp.getheader("Content-Length")
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            if length is not None or self.command == "HEAD" or resp.status in (204, 304):
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    while chunk := resp.read(65536):
                        self.wfile.write(chunk)
            else:
                # No length from upstream: stream it on as chunked transfer coding.
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while chunk := resp.read1(65536):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="moto's URL, e.g. http://127.0.0.1:5000")
    args = ap.parse_args()
    Handler.state = FaultState()
    Handler.endpoints = EndpointMap()
    Handler.upstream = urllib.parse.urlsplit(args.upstream)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write(f"fault_proxy listening on http://{args.host}:{args.port} -> {args.upstream}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
