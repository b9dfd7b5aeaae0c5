"""The mock's Blob storage behaves like Azure's, errors included: List Blobs pages with
NextMarker and a prefix, ranged Get Blob (206 with Content-Range, 416 past the end, 200
without a range), SAS checks (unknown signature, expiry, permissions), bearer tokens for
the storage audience only, x-ms-version required, missing containers and blobs, and
faults answered in the storage XML error envelope."""

import xml.etree.ElementTree as ET

from harness import check
import mockctl
from mockctl import MockServer

V = {"x-ms-version": "2021-08-06"}


def names(resp):
    root = ET.fromstring(resp.body)
    return ([b.findtext("Name") for b in root.iter("Blob")],
            root.findtext("NextMarker") or None)


def test_mock_blob_listing_and_ranges():
    with MockServer() as m:
        sas = m.blob_sas("acct")
        for i in range(5):
            m.blob_append("acct", "insights-logs-x", "p/%d.json" % i, "line %d\n" % i)
        m.blob_append("acct", "insights-logs-x", "q/other.json", "x\n")
        base = "/blob/acct/insights-logs-x"
        r = m.request("GET", base + "?restype=container&comp=list&maxresults=2&prefix=p/&" + sas,
                      headers=V)
        check(r.status == 200 and "xml" in r.header("Content-Type"), "list: %r" % r)
        got, marker = names(r)
        check(got == ["p/0.json", "p/1.json"] and marker, "first page: %r %r" % (got, marker))
        seen = list(got)
        while marker:
            r = m.request("GET", base + "?restype=container&comp=list&maxresults=2&prefix=p/&"
                          "marker=%s&%s" % (marker, sas), headers=V)
            got, marker = names(r)
            seen += got
        check(seen == ["p/%d.json" % i for i in range(5)], "all pages: %r" % seen)
        r = m.request("GET", base + "/p/3.json?" + sas, headers=dict(V, Range="bytes=2-"))
        check(r.status == 206 and r.body == b"ne 3\n" and
              r.header("Content-Range") == "bytes 2-6/7", "range: %r" % r)
        r = m.request("GET", base + "/p/3.json?" + sas, headers=dict(V, Range="bytes=0-3"))
        check(r.status == 206 and r.body == b"line", "bounded range: %r" % r)
        r = m.request("GET", base + "/p/3.json?" + sas, headers=dict(V, Range="bytes=7-"))
        check(r.status == 416 and r.header("Content-Range") == "bytes */7" and
              r.header("x-ms-error-code") == "InvalidRange", "past the end: %r" % r)
        r = m.request("GET", base + "/p/3.json?" + sas, headers=V)
        check(r.status == 200 and r.body == b"line 3\n", "whole: %r" % r)
        r = m.request("GET", base + "/nope.json?" + sas, headers=V)
        check(r.status == 404 and r.header("x-ms-error-code") == "BlobNotFound", "%r" % r)
        r = m.request("GET", "/blob/acct/nocontainer?restype=container&comp=list&" + sas,
                      headers=V)
        check(r.status == 404 and r.header("x-ms-error-code") == "ContainerNotFound", "%r" % r)
        st = m.blob_state()
        check(st["lists"] == 3 and st["answered_416"] == 1, "counters: %r" % st)


def test_mock_blob_auth_and_faults():
    with MockServer() as m:
        m.blob_append("acct", "c-1", "b.json", "x\n")
        path = "/blob/acct/c-1?restype=container&comp=list"
        good = m.blob_sas("acct")
        expired = m.blob_sas("acct", expires_in=-5)
        nolist = m.blob_sas("acct", permissions="r")
        other = m.blob_sas("elsewhere")
        check(m.request("GET", path + "&" + good, headers=V).status == 200, "a good SAS")
        r = m.request("GET", path + "&" + good)
        check(r.status == 400 and r.header("x-ms-error-code") == "MissingRequiredHeader",
              "x-ms-version is required: %r" % r)
        r = m.request("GET", path + "&" + expired, headers=V)
        check(r.status == 403 and b"expiry" in r.body and
              r.header("x-ms-error-code") == "AuthenticationFailed", "expired: %r" % r)
        r = m.request("GET", path + "&" + nolist, headers=V)
        check(r.status == 403 and r.header("x-ms-error-code") == "AuthorizationPermissionMismatch",
              "permissions: %r" % r)
        r = m.request("GET", path + "&" + other, headers=V)
        check(r.status == 403, "another account's SAS: %r" % r)
        tampered = good.replace("se=", "se=2099")
        check(m.request("GET", path + "&" + tampered, headers=V).status == 403, "a changed se")
        r = m.request("GET", path, headers=V)
        check(r.status == 401 and r.header("x-ms-error-code") == "NoAuthenticationInformation",
              "no credentials: %r" % r)
        tok = m.token("https://storage.azure.com/.default")
        check(m.request("GET", path, headers=V, token=tok).status == 200, "a storage token")
        graph = m.token(mockctl.GRAPH_SCOPE)
        check(m.request("GET", path, headers=V, token=graph).status == 401,
              "a Graph token is not for storage")
        m.fault("/blob/acct/", status=503, retry_after=2, count=1)
        r = m.request("GET", path + "&" + good, headers=V)
        check(r.status == 503 and r.header("Retry-After") == "2" and
              r.header("x-ms-error-code") == "ServerBusy" and r.body.startswith(b"<?xml"),
              "a fault in the storage envelope: %r" % r)
        check(m.request("GET", path + "&" + good, headers=V).status == 200, "the fault is spent")
