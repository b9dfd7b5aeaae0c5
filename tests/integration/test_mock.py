"""kagari-mock itself (tests/mock): the token endpoint, Graph users and sign-ins, Identity
Protection, security alerts and incidents, Defender machines, actions and indicators,
Intune, faults, limits and the control API, over TLS with a self-signed certificate."""

import base64
import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.parse

from harness import check
from mockctl import (ADMIN, ALERT_LSASS, ALICE, CLIENT_ID, CLIENT_SECRET, DEVICE_WS0142,
                     DISABLED, EXPIRED_CLIENT_ID, EXPIRED_CLIENT_SECRET, FAILING, GRAPH_SCOPE,
                     INCIDENT, INCIDENT_REDIRECTED, JIRO, LEGACY, LINUX, MDE_SCOPE, OFFLINE,
                     READONLY_CLIENT_ID, READONLY_CLIENT_SECRET, SYNCED, TENANT, TENANT_DOMAIN,
                     WS0077, WS0142, MockServer, make_cert)


def q(s):
    """URL-encode a query value (OData literals keep their quotes)."""
    return urllib.parse.quote(s, safe="'")


def expect(r, status, code=None, what=""):
    check(r.status == status, "%s: expected %d, got %r" % (what, status, r))
    if code is not None:
        check(r.error_code == code, "%s: expected error code %s, got %r" % (what, code, r))


def graph_error_shape(r):
    e = r.json["error"]
    check(isinstance(e.get("message"), str) and isinstance(e.get("innerError"), dict)
          and "request-id" in e["innerError"] and "date" in e["innerError"],
          "not a Graph error envelope: %r" % r)


def mde_error_shape(r):
    e = r.json["error"]
    check(set(e) == {"code", "message", "target"}, "not an MDE error: %r" % r)


def aad_error(r, status, error, aadsts):
    check(r.status == status, "token: expected %d, got %r" % (status, r))
    j = r.json
    check(j.get("error") == error, "token: expected %s, got %r" % (error, r))
    check(j.get("error_codes") == [aadsts], "token: expected AADSTS%d, got %r" % (aadsts, r))
    check(j["error_description"].startswith("AADSTS%d: " % aadsts)
          and "Trace ID: " in j["error_description"]
          and "Correlation ID: " in j["error_description"], "error_description: %r" % j)
    for k in ("timestamp", "trace_id", "correlation_id"):
        check(isinstance(j.get(k), str) and j[k], "token error lacks %s: %r" % (k, j))


def test_token_secret():
    """Client credentials with a secret: success, each error class, caching counts,
    expiry through the control API and through a short lifetime, audience binding."""
    with MockServer(token_lifetime=2) as m:
        r = m.token_request()
        check(r.status == 200, "token: %r" % r)
        check(r.json["token_type"] == "Bearer" and r.json["expires_in"] == 2
              and r.json["ext_expires_in"] == 2 and r.json["access_token"], "token: %r" % r.json)
        tok = r.json["access_token"]
        # HTTP Basic credentials and the tenant by domain are accepted too
        basic = base64.b64encode(("%s:%s" % (CLIENT_ID, CLIENT_SECRET)).encode()).decode()
        r = m.request("POST", "/%s/oauth2/v2.0/token" % TENANT_DOMAIN,
                      form={"scope": GRAPH_SCOPE, "grant_type": "client_credentials"},
                      headers={"Authorization": "Basic " + basic})
        check(r.status == 200, "basic auth token: %r" % r)
        check(m.counters()["tokens"]["issued"] == 2, "issuances: %r" % m.counters()["tokens"])

        aad_error(m.token_request(tenant="no-such-tenant.example"), 400, "invalid_request", 90002)
        aad_error(m.token_request(extra={"grant_type": "password"}), 400,
                  "unsupported_grant_type", 70003)
        aad_error(m.token_request(client_id="00000000-0000-4000-8000-0000000000ff"), 400,
                  "unauthorized_client", 700016)
        aad_error(m.token_request(scope="https://graph.microsoft.com/User.Read.All"), 400,
                  "invalid_scope", 1002012)
        aad_error(m.token_request(scope="https://unknown.example/.default"), 400,
                  "invalid_scope", 70011)
        aad_error(m.token_request(secret="wrong"), 401, "invalid_client", 7000215)
        aad_error(m.token_request(client_id=EXPIRED_CLIENT_ID, secret=EXPIRED_CLIENT_SECRET),
                  401, "invalid_client", 7000222)
        aad_error(m.token_request(secret=None), 401, "invalid_client", 7000216)
        r = m.request("POST", "/%s/oauth2/v2.0/token" % TENANT,
                      {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                       "scope": GRAPH_SCOPE, "grant_type": "client_credentials"})
        aad_error(r, 400, "invalid_request", 900144)  # JSON instead of a form
        check(m.counters()["tokens"]["issued"] == 2, "failed requests issued tokens")

        r = m.request("GET", "/v1.0/users/" + ALICE[1], token=tok)
        expect(r, 200, what="fresh token")
        # a Graph token is not a Defender token
        r = m.request("GET", "/api/machines/" + WS0142[0], token=tok)
        expect(r, 401, "Unauthorized", "graph token on MDE")
        mde_error_shape(r)
        r = m.request("GET", "/v1.0/users/" + ALICE[1])
        expect(r, 401, "InvalidAuthenticationToken", "no token")
        graph_error_shape(r)
        r = m.request("GET", "/v1.0/users/" + ALICE[1], token="mock.not-a-token")
        expect(r, 401, "InvalidAuthenticationToken", "unknown token")
        time.sleep(2.2)
        r = m.request("GET", "/v1.0/users/" + ALICE[1], token=tok)
        expect(r, 401, "InvalidAuthenticationToken", "token past its expires_in")

        m.config(token_lifetime=3599)
        tok = m.token(cached=False)
        expect(m.request("GET", "/v1.0/users/" + ALICE[1], token=tok), 200, what="new token")
        m.expire_tokens()
        expect(m.request("GET", "/v1.0/users/" + ALICE[1], token=tok), 401,
               "InvalidAuthenticationToken", "after expire-tokens")
        c = m.counters()
        # 3 from the token endpoint (invalid_client), 5 from the resources
        check(c["answered_401"] == 8, "answered_401: %r" % c["answered_401"])
        check(c["tokens"]["by_client_scope"]["%s %s" % (CLIENT_ID, GRAPH_SCOPE)] == 3,
              "per client/scope counts: %r" % c["tokens"])


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign_jwt(key, header, claims, pss=True):
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    cmd = ["openssl", "dgst", "-sha256", "-sign", key]
    if pss:
        cmd[3:3] = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
    sig = subprocess.run(cmd, input=signing_input, capture_output=True, check=True,
                         timeout=30).stdout
    return signing_input.decode() + "." + b64url(sig)


def test_token_assertion():
    """Certificate credentials: a PS256 (and RS256) client assertion signed with the key
    of the certificate registered in the seed; wrong audience, expiry, issuer, algorithm
    and signature are refused with their AADSTS codes."""
    import tempfile
    folder = tempfile.mkdtemp(prefix="kagari-mock-jwt-")
    try:
        cert, key = make_cert(folder, rsa=True, cn="kagari-app")
        with open(cert) as f:
            pem = f.read()
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"],
                             capture_output=True, check=True, timeout=30).stdout
        app = "5e1b7a90-0000-4000-8000-00000000c001"
        seed = {"clients": [{"tenant": TENANT, "client_id": app, "certificate": pem,
                             "display_name": "kagari cert app"}]}
        with MockServer(seed=seed) as m:
            aud = "%s/%s/oauth2/v2.0/token" % (m.base_url, TENANT)
            now = int(time.time())
            header = {"alg": "PS256", "typ": "JWT", "x5t#S256": b64url(hashlib.sha256(der).digest())}
            claims = {"aud": aud, "iss": app, "sub": app, "jti": "7f0c0000-0000-4000-8000-1",
                      "nbf": now, "iat": now, "exp": now + 600}

            def ask(assertion):
                return m.token_request(client_id=app, secret=None, extra={
                    "client_assertion_type":
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    "client_assertion": assertion})

            r = ask(sign_jwt(key, header, claims))
            check(r.status == 200 and r.json["access_token"], "PS256 assertion: %r" % r)
            rs = dict(header, alg="RS256")
            rs.pop("x5t#S256")
            rs["x5t"] = b64url(hashlib.sha1(der).digest())
            check(ask(sign_jwt(key, rs, claims, pss=False)).status == 200, "RS256 + x5t")
            aad_error(ask(sign_jwt(key, header, dict(claims, aud="https://login.example/x"))),
                      401, "invalid_client", 700023)
            aad_error(ask(sign_jwt(key, header, dict(claims, exp=now - 5))), 401,
                      "invalid_client", 700024)
            aad_error(ask(sign_jwt(key, header, dict(claims, iss="someone-else"))), 401,
                      "invalid_client", 700021)
            aad_error(ask(sign_jwt(key, dict(header, alg="HS256"), claims)), 401,
                      "invalid_client", 5002738)
            good = sign_jwt(key, header, claims)
            tampered = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
            aad_error(ask(tampered), 401, "invalid_client", 700027)
            aad_error(ask(sign_jwt(key, dict(header, **{"x5t#S256": "AAAA"}), claims)), 401,
                      "invalid_client", 700027)
            aad_error(ask("not.a.jwt!"), 400, "invalid_request", 50027)
    finally:
        import shutil
        shutil.rmtree(folder, ignore_errors=True)


def test_users():
    """GET with and without $select, PATCH disable (204, counted, state), privileged 403,
    synced 400, unknown 404, revoke 200 {"value": true}."""
    with MockServer() as m:
        r = m.graph("GET", "/v1.0/users/" + ALICE[1])
        expect(r, 200, what="get user")
        check("accountEnabled" not in r.json and r.json["id"] == ALICE[0],
              "default property set: %r" % r.json)
        check(r.header("request-id") and r.header("client-request-id"), "Graph ids: %r" % r.headers)
        check(r.header("Content-Type").startswith("application/json"), "content type")
        r = m.graph("GET", "/v1.0/users/%s?$select=id,accountEnabled,onPremisesSyncEnabled"
                    % ALICE[0])
        check(r.status == 200 and r.json["accountEnabled"] is True
              and set(r.json) == {"id", "accountEnabled", "onPremisesSyncEnabled",
                                  "@odata.context"}, "$select: %r" % r)
        expect(m.graph("GET", "/v1.0/users/%s?$select=id,nope" % ALICE[0]), 400,
               "Request_BadRequest", "unknown $select property")
        r = m.graph("GET", "/v1.0/users?$filter=%s&$select=id,accountEnabled"
                    % q("userPrincipalName eq '%s'" % DISABLED[1]))
        check(r.status == 200 and r.json["value"] == [{"id": DISABLED[0], "accountEnabled": False}],
              "users list filter: %r" % r)

        r = m.graph("PATCH", "/v1.0/users/" + urllib.parse.quote(ALICE[1]),
                    {"accountEnabled": False})
        expect(r, 204, what="disable")
        check(r.body == b"", "204 with a body")
        check(m.user_counter(ALICE[1], "disable") == 1, "disable counted once")
        check(m.user_state(ALICE[1])["accountEnabled"] is False, "state not disabled")
        expect(m.graph("PATCH", "/v1.0/users/" + ALICE[0], {"accountEnabled": False}), 204,
               what="disable again (no-op)")
        check(m.user_counter(ALICE[1], "disable") == 2, "repeat not counted")
        expect(m.graph("PATCH", "/v1.0/users/" + ALICE[0], {"accountEnabled": True}), 204,
               what="enable")
        check(m.user_state(ALICE[0])["accountEnabled"] is True, "state not enabled")
        expect(m.graph("PATCH", "/v1.0/users/" + ALICE[0], {"accountEnabled": "no"}), 400,
               "Request_BadRequest", "non-boolean")
        expect(m.graph("PATCH", "/v1.0/users/" + ALICE[0], {"passwordProfile": {}}), 400,
               "Request_BadRequest", "read-only property")
        r = m.graph("PATCH", "/v1.0/users/" + ADMIN[1], {"accountEnabled": False})
        expect(r, 403, "Authorization_RequestDenied", "privileged")
        graph_error_shape(r)
        expect(m.graph("PATCH", "/v1.0/users/" + SYNCED[1], {"accountEnabled": False}), 400,
               "Request_BadRequest", "synced")
        expect(m.graph("PATCH", "/v1.0/users/nobody@example.jp", {"accountEnabled": False}), 404,
               "Request_ResourceNotFound", "unknown")
        check(m.user_state(ADMIN[1])["accountEnabled"] is True
              and m.user_state(SYNCED[1])["accountEnabled"] is True, "refused PATCH applied")

        before = m.user_state(JIRO[1])["signInSessionsValidFromDateTime"]
        r = m.graph("POST", "/v1.0/users/%s/revokeSignInSessions" % JIRO[1])
        check(r.status == 200 and r.json["value"] is True, "revoke: %r" % r)
        after = m.user_state(JIRO[1])["signInSessionsValidFromDateTime"]
        check(after > before, "signInSessionsValidFromDateTime not bumped: %s %s" % (before, after))
        check(m.user_counter(JIRO[1], "revoke") == 1, "revoke counted")
        expect(m.graph("POST", "/v1.0/users/nobody@example.jp/revokeSignInSessions"), 404,
               "Request_ResourceNotFound", "revoke unknown")
        expect(m.graph("DELETE", "/v1.0/users/" + ALICE[0]), 405, what="method")

        m.expire_tokens()
        expect(m.graph("PATCH", "/v1.0/users/" + ALICE[0], {"accountEnabled": False}), 401,
               "InvalidAuthenticationToken", "expired token")
        check(m.user_counter(ALICE[1], "disable") == 2, "an unauthorized PATCH was counted")


def test_signins_paging():
    """signIns: the filter shapes connectors send, newest first, paging through absolute
    nextLinks with an opaque $skiptoken until absent, tampered tokens and unsupported
    filters refused, the empty-middle-page option, the premium-license toggle."""
    with MockServer() as m:
        m.config(page_size=3, limits={"signins_per_10s": 1000})
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400 * 2))
        path = "/v1.0/auditLogs/signIns?$filter=%s&$top=1000" % q("createdDateTime ge " + since)
        link, pages, seen = path, 0, []
        while link:
            r = m.graph("GET", link)
            expect(r, 200, what="page %d" % pages)
            check(len(r.json["value"]) <= 3, "page larger than page_size")
            seen += r.json["value"]
            link = r.json.get("@odata.nextLink")
            if link:
                check(link.startswith(m.base_url + "/v1.0/auditLogs/signIns?"),
                      "nextLink not absolute: %s" % link)
                check("$skiptoken=" in link and "$top=1000" in link and "$filter=" in link,
                      "nextLink lost options: %s" % link)
            pages += 1
        check(pages == 3 and len(seen) == 8, "pages %d, items %d" % (pages, len(seen)))
        ids = [s["id"] for s in seen]
        check(len(set(ids)) == 8, "duplicates across pages")
        times = [s["createdDateTime"] for s in seen]
        check(times == sorted(times, reverse=True), "not newest first: %r" % times)

        r = m.graph("GET", "/v1.0/auditLogs/signIns?$filter=%s"
                    % q("userPrincipalName eq '%s' and status/errorCode ne 0" % ALICE[1]))
        check(r.status == 200 and len(r.json["value"]) == 2
              and all(s["status"]["errorCode"] != 0 for s in r.json["value"]),
              "failed sign-ins of alice: %r" % r)
        r = m.graph("GET", "/v1.0/auditLogs/signIns?$filter=%s" % q("ipAddress eq '203.0.113.50'"))
        check(r.status == 200 and len(r.json["value"]) == 3, "by ip: %r" % r)

        first = m.graph("GET", path).json["@odata.nextLink"]
        bad = first[:-1] + ("0" if first[-1] != "0" else "1")
        expect(m.graph("GET", bad), 400, "BadRequest", "tampered skiptoken")
        other = first.replace("createdDateTime", "createdDateTime", 1).replace("$top=1000",
                                                                                "$top=999")
        expect(m.graph("GET", other), 400, "BadRequest", "skiptoken of another query")
        for bad_filter in ("riskDetail eq 'none'", "userPrincipalName eq 'a' or ipAddress eq 'b'",
                           "createdDateTime ge '%s'" % since, "status/errorCode ne '0'"):
            expect(m.graph("GET", "/v1.0/auditLogs/signIns?$filter=" + q(bad_filter)), 400,
                   "BadRequest", bad_filter)
        expect(m.graph("GET", "/v1.0/auditLogs/signIns?$expand=x"), 400, "BadRequest", "$expand")

        m.config(empty_page=True)
        r = m.graph("GET", path)
        r2 = m.graph("GET", r.json["@odata.nextLink"])
        check(r2.status == 200 and r2.json["value"] == [] and r2.json.get("@odata.nextLink"),
              "empty middle page: %r" % r2)
        r3 = m.graph("GET", r2.json["@odata.nextLink"])
        check([s["id"] for s in r3.json["value"]] == ids[3:6], "after the empty page: %r" % r3)

        m.config(signins_premium=False)
        expect(m.graph("GET", path), 403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
               "no premium license")


def test_identity_protection():
    """riskyUsers: confirmCompromised/dismiss 204, first read isProcessing, then the final
    state; riskDetections filter; the 1 request/s limiter answers 429 without
    Retry-After."""
    with MockServer() as m:
        m.config(limits={"idp_per_sec": 1000})
        r = m.graph("GET", "/v1.0/identityProtection/riskyUsers?$filter=%s"
                    % q("riskLevel eq 'high' and riskState eq 'atRisk'"))
        check(r.status == 200 and [u["id"] for u in r.json["value"]] == [ALICE[0]],
              "risky filter: %r" % r)
        expect(m.graph("POST", "/v1.0/identityProtection/riskyUsers/confirmCompromised",
                       {"userIds": [ALICE[0]]}), 204, what="confirm")
        r = m.graph("GET", "/v1.0/identityProtection/riskyUsers/" + ALICE[0])
        check(r.status == 200 and r.json["isProcessing"] is True
              and r.json["riskState"] == "atRisk", "first read while processing: %r" % r)
        r = m.graph("GET", "/v1.0/identityProtection/riskyUsers/" + ALICE[0])
        check(r.json["isProcessing"] is False and r.json["riskState"] == "confirmedCompromised"
              and r.json["riskLevel"] == "high"
              and r.json["riskDetail"] == "adminConfirmedUserCompromised", "final: %r" % r)
        r = m.graph("GET", "/v1.0/identityProtection/riskyUsers/%s/history" % ALICE[0])
        check(r.status == 200 and len(r.json["value"]) == 1, "history: %r" % r)
        expect(m.graph("POST", "/v1.0/identityProtection/riskyUsers/dismiss",
                       {"userIds": [JIRO[0]]}), 204, what="dismiss")
        m.graph("GET", "/v1.0/identityProtection/riskyUsers/" + JIRO[0])
        r = m.graph("GET", "/v1.0/identityProtection/riskyUsers/" + JIRO[0])
        check(r.json["riskState"] == "dismissed" and r.json["riskLevel"] == "none",
              "dismissed: %r" % r)
        c = m.counters()["risky_users"]
        check(c[ALICE[0]]["confirm"] == 1 and c[JIRO[0]]["dismiss"] == 1, "counters: %r" % c)
        expect(m.graph("POST", "/v1.0/identityProtection/riskyUsers/dismiss", {"userIds": "x"}),
               400, "BadRequest", "bad body")
        expect(m.graph("GET", "/v1.0/identityProtection/riskyUsers/nobody"), 404,
               "ResourceNotFound", "unknown risky user")
        r = m.graph("GET", "/v1.0/identityProtection/riskDetections?$filter=%s"
                    % q("userPrincipalName eq '%s'" % ALICE[1]))
        check(r.status == 200 and len(r.json["value"]) == 3
              and {d["riskEventType"] for d in r.json["value"]}
              == {"unfamiliarFeatures", "anonymizedIPAddress", "leakedCredentials"},
              "detections: %r" % r)

        m.config(limits={"idp_per_sec": 1})
        time.sleep(1.1)
        expect(m.graph("GET", "/v1.0/identityProtection/riskyUsers"), 200, what="first in 1 s")
        r = m.graph("GET", "/v1.0/identityProtection/riskyUsers")
        expect(r, 429, "TooManyRequests", "second in 1 s")
        check(r.header("Retry-After") is None, "Identity Protection 429 carries Retry-After")
        time.sleep(1.1)
        expect(m.graph("GET", "/v1.0/identityProtection/riskyUsers"), 200, what="after 1 s")


def test_mde_isolate():
    """Isolate: 201 Pending; a repeat 400 ActiveRequestAlreadyExists (or the pending action
    with return_pending); polls InProgress then Succeeded; isolated in the state; the
    reconciliation list; offline, failing, unsupported and unknown machines."""
    with MockServer(poll_steps=2) as m:
        body = {"Comment": "SOAR case 1", "IsolationType": "Full"}
        r = m.mde("POST", "/api/machines/%s/isolate" % WS0142[0], body)
        check(r.status == 201 and r.json["status"] == "Pending" and r.json["type"] == "Isolate"
              and r.json["scope"] == "Full" and r.json["machineId"] == WS0142[0]
              and r.json["computerDnsName"] == WS0142[1] and r.json["requestor"] == CLIENT_ID
              and r.json["requestorComment"] == "SOAR case 1", "isolate: %r" % r)
        aid = r.json["id"]
        r = m.mde("POST", "/api/machines/%s/isolate" % WS0142[0], body)
        expect(r, 400, "ActiveRequestAlreadyExists", "repeat")
        mde_error_shape(r)
        check(r.json["error"]["message"] == "Action is already in progress", "message: %r" % r)
        m.config(duplicate_action="return_pending")
        r = m.mde("POST", "/api/machines/%s/isolate" % WS0142[0], body)
        check(r.status == 201 and r.json["id"] == aid, "return_pending: %r" % r)
        m.config(duplicate_action="error")
        check(m.machine_counter(WS0142[0], "Isolate") == 1
              and m.machine_counter(WS0142[0], "rejected") == 2, "counters: %r" % m.counters())
        check(m.machine_state(WS0142[0])["isolated"] is False, "isolated before completion")

        r = m.mde("GET", "/api/machineactions/" + aid)
        check(r.status == 200 and r.json["status"] == "InProgress", "poll 1: %r" % r)
        r = m.mde("GET", "/api/machineactions/" + aid)
        check(r.json["status"] == "Succeeded", "poll 2: %r" % r)
        check(m.machine_state(WS0142[1])["isolated"] is True, "not isolated after Succeeded")
        r = m.mde("GET", "/api/machineactions?$filter=%s"
                  % q("machineId eq '%s' and type eq 'Isolate'" % WS0142[0]))
        check(r.status == 200 and [a["id"] for a in r.json["value"]] == [aid]
              and r.json["value"][0]["status"] == "Succeeded", "reconciliation list: %r" % r)
        # a new isolate is allowed once the earlier one is final
        r = m.mde("POST", "/api/machines/%s/isolate" % WS0142[0], body)
        expect(r, 201, what="isolate after final")
        r = m.mde("POST", "/api/machines/%s/unisolate" % WS0142[0], {"Comment": "release"})
        expect(r, 201, what="unisolate")
        uid = r.json["id"]
        m.mde("GET", "/api/machineactions/" + uid)
        m.mde("GET", "/api/machineactions/" + uid)
        check(m.machine_state(WS0142[0])["isolated"] is False, "still isolated after unisolate")
        r = m.mde("POST", "/api/machineactions/%s/cancel" % uid, {"Comment": "x"})
        expect(r, 400, "BadRequest", "cancel a final action")

        # the seed holds an isolated machine (for reconciliation)
        r = m.mde("GET", "/api/machineactions?$filter=%s"
                  % q("machineId eq '%s' and type eq 'Isolate'" % WS0077[0]))
        check(len(r.json["value"]) == 1 and r.json["value"][0]["status"] == "Succeeded",
              "seeded action: %r" % r)
        check(m.machine_state(WS0077[0])["isolated"] is True, "seeded machine not isolated")

        r = m.mde("POST", "/api/machines/%s/isolate" % OFFLINE[0], body)
        oid = r.json["id"]
        for _ in range(4):
            r = m.mde("GET", "/api/machineactions/" + oid)
        check(r.json["status"] == "Pending", "offline machine: %r" % r)
        r = m.mde("POST", "/api/machineactions/%s/cancel" % oid, {"Comment": "give up"})
        check(r.status == 200 and r.json["status"] == "Cancelled"
              and r.json["cancellationComment"] == "give up", "cancel: %r" % r)
        r = m.mde("POST", "/api/machines/%s/runAntiVirusScan" % FAILING[0],
                  {"Comment": "scan", "ScanType": "Quick"})
        fid = r.json["id"]
        m.mde("GET", "/api/machineactions/" + fid)
        check(m.mde("GET", "/api/machineactions/" + fid).json["status"] == "Failed",
              "seeded final state")
        m.set_machine(WS0077[0], action_results={"Unisolate": "TimeOut"})
        r = m.mde("POST", "/api/machines/%s/unisolate" % WS0077[0], {"Comment": "release"})
        m.mde("GET", "/api/machineactions/" + r.json["id"])
        check(m.mde("GET", "/api/machineactions/" + r.json["id"]).json["status"] == "TimeOut",
              "final state set through the control API")

        expect(m.mde("POST", "/api/machines/%s/isolate" % LEGACY[0], body), 400,
               "OsPlatformNotSupported", "Windows 7")
        expect(m.mde("POST", "/api/machines/%s/isolate" % LINUX[0],
                     {"Comment": "x", "IsolationType": "Selective"}), 400,
               "OsPlatformNotSupported", "selective on Linux")
        expect(m.mde("POST", "/api/machines/%s/isolate" % ("0" * 40), body), 404,
               "ResourceNotFound", "unknown machine")
        expect(m.mde("GET", "/api/machineactions/00000000-0000-4000-8000-000000000000"), 404,
               "ResourceNotFound", "unknown action")


def test_mde_body_case():
    """Body parameter names are case-sensitive: wrong case reads as missing; bad enum
    values and hashes are InvalidInput / InvalidHashValue."""
    with MockServer() as m:
        url = "/api/machines/%s/isolate" % WS0142[0]
        expect(m.mde("POST", url, {"comment": "x", "IsolationType": "Full"}), 400,
               "MissingRequiredParameter", "comment")
        expect(m.mde("POST", url, {"Comment": "x", "isolationType": "Full"}), 400,
               "MissingRequiredParameter", "isolationType")
        expect(m.mde("POST", url, {"Comment": "x", "IsolationType": "full"}), 400,
               "InvalidInput", "enum case")
        expect(m.mde("POST", url, {"Comment": "x", "IsolationType": "Full", "comment": "y"}),
               400, "InvalidInput", "both spellings")
        expect(m.mde("POST", url, "{not json"), 400, "InvalidRequestBody", "bad JSON")
        expect(m.mde("POST", url), 400, "MissingRequiredParameter", "no body")
        expect(m.mde("POST", "/api/machines/%s/runAntiVirusScan" % WS0142[0],
                     {"Comment": "x", "ScanType": "Deep"}), 400, "InvalidInput", "ScanType")
        expect(m.mde("POST", "/api/machines/%s/StopAndQuarantineFile" % WS0142[0],
                     {"Comment": "x", "Sha1": "abc"}), 400, "InvalidHashValue", "Sha1")
        check(m.counters()["machines"] == {}, "a refused action was counted")


def test_mde_machines():
    """Machines by id and by name, the three $filter shapes, startswith, findbyip with its
    window and 30-day rule."""
    with MockServer() as m:
        r = m.mde("GET", "/api/machines/" + WS0142[0])
        check(r.status == 200 and r.json["computerDnsName"] == WS0142[1], "by id: %r" % r)
        r = m.mde("GET", "/api/machines/" + WS0142[1])
        check(r.status == 200 and r.json["id"] == WS0142[0], "by name: %r" % r)
        for f in ("computerDnsName eq '%s'" % WS0142[1], "lastIpAddress eq '%s'" % WS0142[2],
                  "aadDeviceId eq 'd3f10000-0000-4000-8000-000000000142'",
                  "startswith(computerDnsName,'ws-0142')"):
            r = m.mde("GET", "/api/machines?$filter=" + q(f))
            check(r.status == 200 and [x["id"] for x in r.json["value"]] == [WS0142[0]],
                  "%s: %r" % (f, r))
        expect(m.mde("GET", "/api/machines?$filter=" + q("machineTags eq 'x'")), 400,
               "ODataError", "unsupported filter")
        expect(m.mde("GET", "/api/machines?$top=10001"), 400, "InvalidInput", "$top")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        r = m.mde("GET", "/api/machines/findbyip(ip='%s',timestamp=%s)" % (WS0142[2], now))
        check(r.status == 200 and [x["id"] for x in r.json["value"]] == [WS0142[0]],
              "findbyip: %r" % r)
        past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 15 * 86400))
        r = m.mde("GET", "/api/machines/findbyip(ip='192.0.2.141',timestamp=%s)" % past)
        check([x["id"] for x in r.json["value"]] == [WS0142[0]], "findbyip history: %r" % r)
        r = m.mde("GET", "/api/machines/findbyip(ip='192.0.2.141',timestamp=%s)" % now)
        check(r.json["value"] == [], "findbyip outside the window: %r" % r)
        old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 31 * 86400))
        expect(m.mde("GET", "/api/machines/findbyip(ip='%s',timestamp=%s)" % (WS0142[2], old)),
               400, "InvalidInput", "older than 30 days")
        expect(m.mde("GET", "/api/machines/nope.example"), 404, "ResourceNotFound", "unknown")


def test_indicators():
    """Indicators: POST upserts by (value, type) -> 200 with a stable id; $filter by value;
    CIDR and missing members refused; DELETE 204 then 404."""
    with MockServer() as m:
        ind = {"indicatorValue": "203.0.113.9", "indicatorType": "IpAddress", "action": "Block",
               "title": "C2", "description": "from SOAR", "severity": "High",
               "generateAlert": True}
        r = m.mde("POST", "/api/indicators", ind)
        check(r.status == 200 and r.json["id"] and r.json["indicatorValue"] == "203.0.113.9"
              and r.json["createdBy"] == CLIENT_ID, "add: %r" % r)
        iid = r.json["id"]
        r = m.mde("POST", "/api/indicators", dict(ind, title="C2 (updated)"))
        check(r.status == 200 and r.json["id"] == iid and r.json["title"] == "C2 (updated)",
              "upsert: %r" % r)
        r = m.mde("GET", "/api/indicators?$filter=" + q("indicatorValue eq '203.0.113.9'"))
        check(r.status == 200 and [x["id"] for x in r.json["value"]] == [iid], "list: %r" % r)
        expect(m.mde("POST", "/api/indicators", dict(ind, indicatorValue="203.0.113.0/24")),
               400, "InvalidIpAddress", "CIDR")
        bad = dict(ind)
        del bad["title"]
        expect(m.mde("POST", "/api/indicators", bad), 400, "MissingRequiredParameter", "title")
        expect(m.mde("POST", "/api/indicators", dict(ind, action="Nuke")), 400, "InvalidInput",
               "action")
        expect(m.mde("POST", "/api/indicators", dict(ind, indicatorType="FileSha256",
                                                      indicatorValue="abc")), 400,
               "InvalidHashValue", "sha256")
        c = m.counters()["indicators"]
        check(c["added"] == 1 and c["updated"] == 1 and c["removed"] == 0, "counters: %r" % c)
        expect(m.mde("DELETE", "/api/indicators/" + iid), 204, what="delete")
        expect(m.mde("DELETE", "/api/indicators/" + iid), 404, "ResourceNotFound", "delete again")
        r = m.mde("GET", "/api/indicators?$filter=" + q("indicatorValue eq '203.0.113.9'"))
        check(r.json["value"] == [], "deleted indicator still listed")
        check(m.counters()["indicators"]["removed"] == 1, "removal not counted")
        m.config(indicator_cap=1)
        expect(m.mde("POST", "/api/indicators", dict(ind, indicatorValue="203.0.113.10")), 400,
               "InvalidInput", "cap")


def test_intune():
    """managedDevices: the three filter shapes, get, an action -> 204 and its result going
    pending -> done after poll_steps reads; unknown id -> 404 with the JSON-string
    message."""
    with MockServer(poll_steps=2) as m:
        r = m.graph("GET", "/v1.0/deviceManagement/managedDevices?$filter="
                    + q("userPrincipalName eq '%s'" % ALICE[1]))
        check(r.status == 200 and len(r.json["value"]) == 2, "by user: %r" % r)
        for f in ("deviceName eq 'WS-0142'",
                  "azureADDeviceId eq 'd3f10000-0000-4000-8000-000000000142'"):
            r = m.graph("GET", "/v1.0/deviceManagement/managedDevices?$filter=" + q(f))
            check([d["id"] for d in r.json["value"]] == [DEVICE_WS0142], "%s: %r" % (f, r))
        expect(m.graph("GET", "/v1.0/deviceManagement/managedDevices?$filter="
                       + q("serialNumber eq 'x'")), 400, "BadRequest", "unsupported filter")
        r = m.graph("POST", "/v1.0/deviceManagement/managedDevices/%s/remoteLock" % DEVICE_WS0142)
        expect(r, 204, what="remoteLock")
        r = m.graph("GET", "/v1.0/deviceManagement/managedDevices/" + DEVICE_WS0142)
        res = r.json["deviceActionResults"]
        check(len(res) == 1 and res[0]["actionName"] == "remoteLock"
              and res[0]["actionState"] == "pending", "after 1 read: %r" % res)
        r = m.graph("GET", "/v1.0/deviceManagement/managedDevices/" + DEVICE_WS0142)
        check(r.json["deviceActionResults"][0]["actionState"] == "done", "after 2 reads: %r" % r)
        expect(m.graph("POST", "/v1.0/deviceManagement/managedDevices/%s/wipe" % DEVICE_WS0142,
                       {"keepUserData": False, "keepEnrollmentData": False}), 204, what="wipe")
        expect(m.graph("POST", "/v1.0/deviceManagement/managedDevices/%s/wipe" % DEVICE_WS0142,
                       {"keepUserData": "no"}), 400, "BadRequest", "wipe bad member")
        check(m.counters()["intune"][DEVICE_WS0142]["remoteLock"] == 1, "intune counters")
        r = m.graph("GET", "/v1.0/deviceManagement/managedDevices/nope")
        expect(r, 404, "ResourceNotFound", "unknown device")
        inner = json.loads(r.json["error"]["message"])
        check(inner["_version"] == 3 and "Message" in inner and "RetryAfter" in inner,
              "Intune message: %r" % inner)


def test_security():
    """alerts_v2 and incidents: list with the watermark filter, evidence types, PATCH enum
    validation returning the full object, comments returning the whole list,
    $expand=alerts, the redirected incident."""
    with MockServer() as m:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600 * 3))
        r = m.graph("GET", "/v1.0/security/alerts_v2?$filter=" + q("lastUpdateDateTime gt " + since))
        check(r.status == 200 and len(r.json["value"]) == 4, "watermark: %r" % r)
        types = {e["@odata.type"] for a in r.json["value"] for e in a["evidence"]}
        for t in ("deviceEvidence", "userEvidence", "ipEvidence", "urlEvidence", "fileEvidence",
                  "processEvidence", "mailboxEvidence", "analyzedMessageEvidence"):
            check("#microsoft.graph.security." + t in types, "seed lacks %s" % t)
        check(any(t.endswith("quantumFluxEvidence") for t in types), "no unknown evidence type")
        url = "/v1.0/security/alerts_v2/" + ALERT_LSASS
        before = m.graph("GET", url).json
        expect(m.graph("PATCH", url, {"status": "closed"}), 400, "BadRequest", "bad status")
        expect(m.graph("PATCH", url, {"classification": "maybe"}), 400, "BadRequest", "bad class")
        expect(m.graph("PATCH", url, {"severity": "low"}), 400, "BadRequest", "not updatable")
        check(m.graph("GET", url).json == before, "a refused PATCH changed the alert")
        r = m.graph("PATCH", url, {"status": "resolved", "classification": "truePositive",
                                   "determination": "malware", "assignedTo": "soar@example.jp"})
        check(r.status == 200 and r.json["status"] == "resolved"
              and r.json["classification"] == "truePositive"
              and r.json["determination"] == "malware" and r.json["evidence"]
              and r.json["resolvedDateTime"]
              and r.json["lastUpdateDateTime"] > before["lastUpdateDateTime"], "PATCH: %r" % r)
        r = m.graph("PATCH", url, {"determination": "compromisedAccount"})
        expect(r, 200, what="older determination name")
        r = m.graph("POST", url + "/comments",
                    {"@odata.type": "microsoft.graph.security.alertComment", "comment": "one"})
        r = m.graph("POST", url + "/comments",
                    {"@odata.type": "microsoft.graph.security.alertComment", "comment": "two"})
        check(r.status == 200 and [c["comment"] for c in r.json["value"]] == ["one", "two"]
              and r.json["value"][0]["createdByDisplayName"] == "kagari SOAR", "comments: %r" % r)
        expect(m.graph("POST", url + "/comments", {"comment": ""}), 400, "BadRequest", "empty")
        expect(m.graph("GET", "/v1.0/security/alerts_v2/nope"), 404, "NotFound", "unknown alert")
        c = m.counters()["alerts"][ALERT_LSASS]
        check(c == {"update": 2, "comment": 2}, "alert counters: %r" % c)

        r = m.graph("GET", "/v1.0/security/incidents/%s?$expand=alerts" % INCIDENT)
        check(r.status == 200 and len(r.json["alerts"]) == 2, "incident expand: %r" % r)
        r = m.graph("GET", "/v1.0/security/incidents/" + INCIDENT_REDIRECTED)
        check(r.json["status"] == "redirected" and r.json["redirectIncidentId"] == INCIDENT,
              "redirected: %r" % r)
        r = m.graph("PATCH", "/v1.0/security/incidents/" + INCIDENT,
                    {"status": "inProgress", "customTags": ["soar"], "assignedTo": "soar"})
        check(r.status == 200 and r.json["customTags"] == ["soar"]
              and r.json["status"] == "inProgress", "incident PATCH: %r" % r)
        expect(m.graph("PATCH", "/v1.0/security/incidents/" + INCIDENT, {"status": "new"}), 400,
               "BadRequest", "alert status on an incident")
        m.config(page_size=1)
        r = m.graph("GET", "/v1.0/security/incidents?$expand=alerts&$count=true")
        check(r.json["@odata.count"] == 3 and len(r.json["value"]) == 1
              and "$expand=alerts" in r.json["@odata.nextLink"], "incident paging: %r" % r)


def test_state_upsert():
    """POST /_mock/state/{alerts,incidents,riskDetections,signIns}: a new item appears in its
    list (newest first), a known alert has the members given replaced and a new
    lastUpdateDateTime (the watermark filter finds it), many at once with {"value": [...]};
    an item without an id is refused and nothing applies."""
    with MockServer() as m:
        before = m.state("alerts", ALERT_LSASS)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
        r = m.control("POST", "/state/alerts", {"id": ALERT_LSASS, "status": "resolved"})
        check(r == {"upserted": 1}, "upsert: %r" % r)
        after = m.state("alerts", ALERT_LSASS)
        check(after["status"] == "resolved" and after["title"] == before["title"]
              and after["lastUpdateDateTime"] > before["lastUpdateDateTime"], "merged: %r" % after)
        r = m.graph("GET", "/v1.0/security/alerts_v2?$filter=" + q("lastUpdateDateTime ge " + since))
        check([a["id"] for a in r.json["value"]] == [ALERT_LSASS], "watermark: %r" % r)
        new = dict(before, id="new-alert-1", lastUpdateDateTime="2030-01-01T00:00:00Z")
        m.control("POST", "/state/alerts", {"value": [new, dict(new, id="new-alert-2")]})
        r = m.graph("GET", "/v1.0/security/alerts_v2")
        ids = [a["id"] for a in r.json["value"]]
        check(ids[:2] == ["new-alert-2", "new-alert-1"], "newest first: %r" % ids)
        det = {"id": "de7-new", "riskEventType": "anonymizedIPAddress", "riskLevel": "medium",
               "detectedDateTime": "2030-01-01T00:00:00Z",
               "lastUpdatedDateTime": "2030-01-01T00:00:00Z"}
        m.control("POST", "/state/riskDetections", det)
        r = m.graph("GET", "/v1.0/identityProtection/riskDetections")
        check(r.json["value"][0]["id"] == "de7-new", "risk detections: %r" % r.json["value"][:1])
        r = m.request("POST", "/_mock/state/alerts", {"value": [{"id": "x"}, {"title": "no id"}]})
        check(r.status == 400, "an item without an id: %r" % r)
        check(m.request("GET", "/_mock/state/alerts/x").status == 404, "a refused batch applied")
        r = m.request("POST", "/_mock/state/users", {"id": "x"})
        check(r.status == 404, "users cannot be upserted: %r" % r)


def test_faults():
    """Queued faults: 429 with Retry-After then success; 503 without; drop (no answer);
    malformed body; slow answer; persistent latency until cleared; the request log."""
    with MockServer() as m:
        tok = m.token()
        m.fault("/v1.0/users", status=429, retry_after=2, count=1)
        r = m.graph("GET", "/v1.0/users/" + ALICE[1])
        expect(r, 429, "TooManyRequests", "queued 429")
        check(r.header("Retry-After") == "2", "Retry-After: %r" % r.headers)
        graph_error_shape(r)
        expect(m.graph("GET", "/v1.0/users/" + ALICE[1]), 200, what="after the fault")
        m.fault("/api/", status=503, count=2)
        r = m.mde("GET", "/api/machines/" + WS0142[0])
        expect(r, 503, what="503")
        mde_error_shape(r)
        check(r.header("Retry-After") is None, "unexpected Retry-After")
        expect(m.mde("GET", "/api/machines/" + WS0142[0]), 503, what="second 503")
        expect(m.mde("GET", "/api/machines/" + WS0142[0]), 200, what="after count")

        m.fault("/v1.0/users", method="PATCH", drop=True)
        expect(m.graph("GET", "/v1.0/users/" + ALICE[1]), 200, what="GET not matched")
        m.expect_dropped("PATCH", "/v1.0/users/" + ALICE[1],
                         json.dumps({"accountEnabled": False}),
                         {"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        check(m.user_counter(ALICE[1], "disable") == 0, "a dropped request had an effect")

        m.fault("/v1.0/security", malformed=True)
        r = m.graph("GET", "/v1.0/security/alerts_v2")
        check(r.status == 200 and r.json is None and r.body.startswith(b"{"), "malformed: %r" % r)

        m.fault("/v1.0/users", delay_ms=400)
        t0 = time.monotonic()
        expect(m.graph("GET", "/v1.0/users/" + ALICE[1]), 200, what="slow")
        check(time.monotonic() - t0 >= 0.38, "fault delay not applied")
        m.delay("/api/", 300)
        for _ in range(2):
            t0 = time.monotonic()
            expect(m.mde("GET", "/api/machines/" + WS0142[0]), 200, what="persistent delay")
            check(time.monotonic() - t0 >= 0.28, "persistent delay not applied")
        m.clear_faults()
        t0 = time.monotonic()
        m.mde("GET", "/api/machines/" + WS0142[0])
        check(time.monotonic() - t0 < 0.25, "delay not cleared")
        c = m.counters()
        check(c["answered_429"] == 1 and c["faults_applied"] == 6, "counters: %r" % c)
        log = m.log_entries(100)
        check([e["status"] for e in log if e["method"] == "PATCH"] == [0], "log of the drop: %r"
              % log)
        check(any(e["status"] == 429 and e["route"] == "users.get" for e in log), "log: %r" % log)
        check(all({"method", "path", "status", "ms"} <= set(e) for e in log), "log entries")


def test_defender_limiter():
    """Defender: per-tenant calls per minute (configured small) -> 429 TooManyRequests with
    Retry-After; reset restores the limits and the data."""
    with MockServer() as m:
        m.config(limits={"defender_per_min": 3})
        for i in range(3):
            expect(m.mde("GET", "/api/machines/" + WS0142[0]), 200, what="call %d" % (i + 1))
        r = m.mde("GET", "/api/machines/" + WS0142[0])
        expect(r, 429, "TooManyRequests", "4th call")
        mde_error_shape(r)
        ra = r.header("Retry-After")
        check(ra is not None and 1 <= int(ra) <= 60, "Retry-After: %r" % ra)
        check(m.counters()["answered_429"] == 1, "429 not counted")
        # another tenant has its own budget
        from mockctl import TENANT2, TENANT2_CLIENT_ID, TENANT2_CLIENT_SECRET
        tok2 = m.token(MDE_SCOPE, tenant=TENANT2, client_id=TENANT2_CLIENT_ID,
                       secret=TENANT2_CLIENT_SECRET)
        expect(m.request("GET", "/api/machines/" + WS0142[0], token=tok2), 200, what="tenant 2")
        m.graph("PATCH", "/v1.0/users/" + ALICE[0], {"accountEnabled": False})
        m.reset()
        check(m.get_config()["limits"]["defender_per_min"] == 100, "reset kept the config")
        check(m.user_state(ALICE[0])["accountEnabled"] is True, "reset kept the data")
        check(m.counters()["users"] == {}, "reset kept the counters")
        expect(m.mde("GET", "/api/machines/" + WS0142[0]), 200, what="after reset")


def test_permissions_and_keepalive():
    """An app with read-only roles gets 403 in each service's shape; many PATCHes over one
    keep-alive TLS connection are all counted."""
    with MockServer() as m:
        ro = m.token(GRAPH_SCOPE, client_id=READONLY_CLIENT_ID, secret=READONLY_CLIENT_SECRET)
        expect(m.request("GET", "/v1.0/users/" + ALICE[0], token=ro), 200, what="read-only get")
        expect(m.request("PATCH", "/v1.0/users/" + ALICE[0], {"accountEnabled": False}, token=ro),
               403, "Authorization_RequestDenied", "read-only PATCH")
        ro_mde = m.token(MDE_SCOPE, client_id=READONLY_CLIENT_ID, secret=READONLY_CLIENT_SECRET)
        r = m.request("POST", "/api/machines/%s/isolate" % WS0142[0],
                      {"Comment": "x", "IsolationType": "Full"}, token=ro_mde)
        expect(r, 403, "Forbidden", "read-only isolate")
        mde_error_shape(r)

        tok = m.token()
        c = m.connect()
        n = 300
        t0 = time.monotonic()
        try:
            for i in range(n):
                c.request("PATCH", "/v1.0/users/" + ALICE[0],
                          body=json.dumps({"accountEnabled": i % 2 == 1}),
                          headers={"Authorization": "Bearer " + tok,
                                   "Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                check(r.status == 204, "PATCH %d: %d" % (i, r.status))
        finally:
            c.close()
        dt = time.monotonic() - t0
        cnt = m.counters()["users"][ALICE[1]]
        check(cnt["disable"] == n // 2 and cnt["enable"] == n // 2, "counts: %r" % cnt)
        check(dt < 20, "%d PATCHes took %.1fs" % (n, dt))

        # plain HTTP on the TLS port gets no HTTP answer; the mock keeps serving
        s = socket.create_connection(("127.0.0.1", m.port), timeout=5)
        try:
            s.sendall(b"GET /_mock/health HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                got = s.recv(100)
            except (ConnectionResetError, socket.timeout):
                got = b""
            check(not got.startswith(b"HTTP/1.1 200"), "plain HTTP answered on TLS")
        finally:
            s.close()
        expect(m.request("GET", "/_mock/health"), 200, what="health after a plain client")


def test_sigterm_with_held_answers():
    """SIGTERM while answers are held by a latency fault and keep-alive connections are
    open: the mock exits at once with status 0 and a clean sanitizer report."""
    with MockServer() as m:
        tok = m.token()
        m.delay("/v1.0/", 5000)
        socks = []
        for _ in range(3):
            raw = socket.create_connection(("127.0.0.1", m.port), timeout=5)
            s = m.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
            s.sendall(("GET /v1.0/users/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer"
                       " %s\r\n\r\n" % (ALICE[1], tok)).encode())
            socks.append(s)
        idle = m.connect()
        idle.request("GET", "/_mock/health")
        idle.getresponse().read()
        time.sleep(0.3)
        t0 = time.monotonic()
        m.stop()
        check(time.monotonic() - t0 < 3, "SIGTERM waited for held answers")
        for s in socks:
            s.close()
        idle.close()


def test_seed_file():
    """--seed extends the defaults (same id replaces), "generate" adds bulk users and
    machines, "@now-..." times are resolved; "replace": true starts from nothing; a bad
    seed stops the mock with a message."""
    seed = {"users": [{"id": ALICE[0], "userPrincipalName": ALICE[1], "displayName": "Alice 2",
                       "accountEnabled": False, "onPremisesSyncEnabled": None}],
            "machines": [{"id": "ab" + "1" * 38, "computerDnsName": "ws-9999.corp.example.jp",
                          "lastIpAddress": "192.0.2.99", "osPlatform": "Windows11",
                          "firstSeen": "@now-10d", "lastSeen": "@now-1m", "_offline": True}],
            "generate": {"users": 50, "machines": 5}}
    with MockServer(seed=seed) as m:
        r = m.graph("GET", "/v1.0/users/%s?$select=displayName,accountEnabled" % ALICE[1])
        check(r.json["displayName"] == "Alice 2" and r.json["accountEnabled"] is False,
              "replaced user: %r" % r)
        check(m.graph("GET", "/v1.0/users/" + JIRO[1]).status == 200, "defaults kept")
        expect(m.graph("PATCH", "/v1.0/users/user00042@example.jp", {"accountEnabled": False}),
               204, what="generated user")
        r = m.mde("GET", "/api/machines/ws-9999.corp.example.jp")
        check(r.status == 200 and r.json["lastSeen"].startswith("20") and "_offline" not in r.json,
              "seeded machine: %r" % r)
        check(m.machine_state("ws-9999.corp.example.jp")["offline"] is True, "hidden flag")
        check(m.mde("GET", "/api/machines/ws-g00005.corp.example.jp").status == 200,
              "generated machine")
    with MockServer(seed={"replace": True, "tenants": [{"id": TENANT, "domains": []}],
                          "clients": [{"tenant": TENANT, "client_id": CLIENT_ID,
                                       "client_secret": "s"}]}) as m:
        tok = m.token(secret="s")
        r = m.request("GET", "/v1.0/users", token=tok)
        check(r.status == 200 and r.json["value"] == [], "replace: %r" % r)
    bad = MockServer(seed={"users": [{"displayName": "no id"}]})
    try:
        bad.start()
        check(False, "a bad seed was accepted")
    except AssertionError as e:
        check("users" in str(e), "bad seed message: %s" % e)
    finally:
        bad.cleanup()
