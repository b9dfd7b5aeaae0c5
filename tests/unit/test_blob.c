/* test_blob.c: the blob poller's reader of List Blobs answers: blobs with their
 * properties, the next marker, what it skips (directory prefixes, unknown elements) and
 * what it refuses (not XML, a DOCTYPE, another root, a blob without a name, a size that
 * is not a number, too many blobs), each with its reason. */
#include "connectors/blob.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"

static const char page[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<EnumerationResults ServiceEndpoint=\"https://acct.blob.core.windows.net/\" "
    "ContainerName=\"insights-logs-signinlogs\"><MaxResults>2</MaxResults><Blobs>"
    "<Blob><Name>tenantId=x/y=2026/m=12/d=05/h=01/m=00/PT1H.json</Name><Properties>"
    "<Creation-Time>Sat, 05 Dec 2026 01:00:03 GMT</Creation-Time><Etag>0x8DCF1</Etag>"
    "<Content-Length>12345</Content-Length><BlobType>AppendBlob</BlobType></Properties>"
    "<OrMetadata /></Blob>"
    "<BlobPrefix><Name>resourceId=/</Name></BlobPrefix>"
    "<Blob><Name>ログ &amp; 日本語.json</Name><Properties><Content-Length>0</Content-Length>"
    "</Properties><Future>ignored</Future></Blob>"
    "</Blobs><NextMarker>2!16!bWFya2Vy</NextMarker></EnumerationResults>";

static void
test_page(void)
{
    struct blob_listing l;
    char *err = NULL;

    T_REQUIRE(blob_parse_listing(page, strlen(page), &l, &err) == 0);
    T_EQ_INT(l.n, 2);
    T_EQ_STR(l.items[0].name, "tenantId=x/y=2026/m=12/d=05/h=01/m=00/PT1H.json");
    T_EQ_STR(l.items[0].created, "Sat, 05 Dec 2026 01:00:03 GMT");
    T_EQ_STR(l.items[0].etag, "0x8DCF1");
    T_ASSERT(l.items[0].size == 12345);
    T_EQ_STR(l.items[1].name, "ログ & 日本語.json");
    T_EQ_STR(l.items[1].created, "");
    T_ASSERT(l.items[1].size == 0);
    T_EQ_STR(l.next_marker, "2!16!bWFya2Vy");
    blob_listing_clear(&l);
    T_ASSERT(l.n == 0 && l.items == NULL && l.next_marker == NULL);
}

static void
test_last_page(void)
{
    static const char *const last[] = {
        "<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>",
        "<EnumerationResults><Blobs></Blobs></EnumerationResults>",
        "<EnumerationResults/>",
    };

    for (size_t i = 0; i < sizeof(last) / sizeof(last[0]); i++) {
        struct blob_listing l;
        char *err = NULL;

        T_REQUIRE(blob_parse_listing(last[i], strlen(last[i]), &l, &err) == 0);
        T_EQ_INT(l.n, 0);
        T_ASSERT(l.next_marker == NULL);
        blob_listing_clear(&l);
    }
}

static void
test_refused(void)
{
    static const struct {
        const char *xml;
        const char *why;
    } bad[] = {
        { "", "" },
        { "not xml", "" },
        { "<EnumerationResults><Blobs>", "" },
        { "<!DOCTYPE x><EnumerationResults/>", "DOCTYPE" },
        { "<Error><Code>AuthenticationFailed</Code></Error>", "EnumerationResults" },
        { "<EnumerationResults><Blobs><Blob><Properties><Content-Length>1</Content-Length>"
          "</Properties></Blob></Blobs></EnumerationResults>",
          "Name" },
        { "<EnumerationResults><Blobs><Blob><Name>a</Name></Blob></Blobs></EnumerationResults>",
          "Content-Length" },
        { "<EnumerationResults><Blobs><Blob><Name>a</Name><Properties><Content-Length>-1"
          "</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
          "Content-Length" },
        { "<EnumerationResults><Blobs><Blob><Name>a</Name><Properties><Content-Length>"
          "1234567890123456789</Content-Length></Properties></Blob></Blobs>"
          "</EnumerationResults>",
          "Content-Length" },
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct blob_listing l;
        char *err = NULL;

        T_EQ_INT(blob_parse_listing(bad[i].xml, strlen(bad[i].xml), &l, &err), -1);
        T_ASSERT(err != NULL);
        T_CONTAINS(err, bad[i].why);
        T_ASSERT(l.n == 0 && l.items == NULL && l.next_marker == NULL);
        free(err);
    }
}

/* More blobs in one page than the reader keeps: refused, not cut. */
static void
test_too_many(void)
{
    struct buf b;
    struct blob_listing l;
    char *err = NULL;

    buf_init(&b, 0);
    T_REQUIRE(buf_puts(&b, "<EnumerationResults><Blobs>") == 0);
    for (int i = 0; i <= BLOB_LIST_MAX; i++) {
        T_REQUIRE(buf_printf(&b,
                             "<Blob><Name>b%d</Name><Properties><Content-Length>1"
                             "</Content-Length></Properties></Blob>",
                             i) == 0);
    }
    T_REQUIRE(buf_puts(&b, "</Blobs></EnumerationResults>") == 0);
    T_EQ_INT(blob_parse_listing(b.data, b.len, &l, &err), -1);
    T_CONTAINS(err, "more than");
    free(err);
    buf_free(&b);
}

TEST_LIST = {
    { "page", test_page },
    { "last_page", test_last_page },
    { "refused", test_refused },
    { "too_many", test_too_many },
    { NULL, NULL },
};
