/* xmlapi.c: a test-only connector that proves the plug-in seams: it is added by this one
 * file (no edit to the call core, the configuration core or the tenant), speaks an XML
 * API (the PAN-OS User-ID slice of kagari-mock) with an API-key header, sends its
 * request as a form whose `cmd` is an XML document, and reads the XML envelope
 * <response status="error" code="NN"><msg>..</msg></response> of its answers with
 * libexpat. It registers itself from a constructor, so only the test binary that links
 * it (kagari-plugtest) has it.
 *
 *   tenants.<id>.xmlapi = { url = "https://fw.example.jp", api_key = "enc:v1:..." }
 *   xmlapi.tag(ip, tag) -> true | nil, err        (User-ID register; idempotent)
 *   xmlapi.tagged()     -> { { ip =, tags = { .. } }, .. } | nil, err
 *   xmlapi.post_xml(doc) -> true | nil, err      (the document as an XML body) */
#include <expat.h>
#include <lauxlib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "connectors/call.h"
#include "engine/kagari.h"

#define XMLAPI_TEXT_MAX 1024

struct xmlapi_conf {
    char *url;
    char *api_key; /* as written: "enc:v1:..." or plain */
};

static const struct config_field xmlapi_fields[] = {
    { "url", CONFIG_URL, offsetof(struct xmlapi_conf, url), 0, 0, NULL, 0 },
    { "api_key", CONFIG_STRING, offsetof(struct xmlapi_conf, api_key), 0, 0, NULL, 0 },
    CONFIG_FIELDS_END,
};

static int
xmlapi_check(void *conf, char **errp)
{
    const struct xmlapi_conf *x = conf;

    if (x->url == NULL || x->api_key == NULL) {
        return kg_err(errp, "url and api_key are required");
    }
    return 0;
}

static const struct config_section xmlapi_section = {
    "xmlapi", xmlapi_fields, sizeof(struct xmlapi_conf), xmlapi_check, NULL,
};

/* The tenant's state: the whole header line, "X-PAN-KEY: <key>". */
static int
xmlapi_tenant_open(const void *conf, void **state, char **errp)
{
    const struct xmlapi_conf *x = conf;
    char *key = secret_decrypt(x->api_key, errp);

    if (key == NULL) {
        return -1;
    }
    *state = xasprintf("X-PAN-KEY: %s", key);
    secret_register(key);
    secret_free(key);
    return 0;
}

static void
xmlapi_tenant_close(void *state)
{
    secret_free(state);
}

/* ---- the XML answer ---- */

/* What the connector reads of an answer: the envelope, its messages, and the entries
 * of a registered-ip listing. */
struct xml_answer {
    char status[16];
    char code[16];
    struct buf msg; /* the text of every <msg> (and its <line>s) */
    cJSON *entries; /* [{ip, tags}] */
    cJSON *cur;     /* the entry being read */
    int in_msg, in_member, depth;
    struct buf text;
};

static const char *
attr(const XML_Char **atts, const char *name)
{
    for (int i = 0; atts[i] != NULL; i += 2) {
        if (strcmp(atts[i], name) == 0) {
            return atts[i + 1];
        }
    }
    return NULL;
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct xml_answer *a = ud;

    a->depth++;
    if (a->depth == 1 && strcmp(name, "response") == 0) {
        snprintf(a->status, sizeof(a->status), "%s",
                 attr(atts, "status") ? attr(atts, "status") : "");
        snprintf(a->code, sizeof(a->code), "%s", attr(atts, "code") ? attr(atts, "code") : "");
    } else if (strcmp(name, "msg") == 0 || strcmp(name, "line") == 0) {
        a->in_msg++;
    } else if (strcmp(name, "entry") == 0 && attr(atts, "ip") != NULL) {
        a->cur = cJSON_CreateObject();
        cJSON_AddStringToObject(a->cur, "ip", attr(atts, "ip"));
        cJSON_AddItemToObject(a->cur, "tags", cJSON_CreateArray());
        cJSON_AddItemToArray(a->entries, a->cur);
    } else if (strcmp(name, "member") == 0 && a->cur != NULL) {
        a->in_member = 1;
        a->text.len = 0;
    }
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
    struct xml_answer *a = ud;

    a->depth--;
    if (strcmp(name, "msg") == 0 || strcmp(name, "line") == 0) {
        a->in_msg--;
    } else if (strcmp(name, "entry") == 0) {
        a->cur = NULL;
    } else if (strcmp(name, "member") == 0 && a->in_member) {
        a->in_member = 0;
        cJSON_AddItemToArray(cJSON_GetObjectItem(a->cur, "tags"),
                             cJSON_CreateString(a->text.data ? a->text.data : ""));
    }
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len)
{
    struct xml_answer *a = ud;

    if (a->in_msg > 0) {
        (void)!buf_append(&a->msg, s, (size_t)len);
    }
    if (a->in_member) {
        (void)!buf_append(&a->text, s, (size_t)len);
    }
}

/* Parse an answer; -1 when it is not well-formed XML with a <response> root. */
static int
answer_parse(const struct httpc_response *resp, struct xml_answer *a)
{
    XML_Parser p = XML_ParserCreate("UTF-8");
    int ok;

    memset(a, 0, sizeof(*a));
    buf_init(&a->msg, XMLAPI_TEXT_MAX);
    buf_init(&a->text, XMLAPI_TEXT_MAX);
    a->entries = cJSON_CreateArray();
    if (p == NULL) {
        return -1;
    }
    XML_SetUserData(p, a);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    ok = XML_Parse(p, resp->body, (int)resp->body_len, 1) == XML_STATUS_OK && a->status[0];
    XML_ParserFree(p);
    return ok ? 0 : -1;
}

static void
answer_free(struct xml_answer *a)
{
    buf_free(&a->msg);
    buf_free(&a->text);
    cJSON_Delete(a->entries);
}

/* The API's error envelope: "<code>: <messages>". */
static char *
xmlapi_error_text(const struct httpc_response *resp)
{
    struct xml_answer a;
    char *out = NULL;

    if (answer_parse(resp, &a) == 0 && strcmp(a.status, "error") == 0) {
        out = xasprintf("%s: %s", a.code[0] ? a.code : "error", a.msg.data ? a.msg.data : "");
    }
    answer_free(&a);
    return out;
}

/* A 2xx answer still fails when its envelope says status="error". */
static int
map_answer(struct call *c, const struct httpc_response *resp, char **result, int list)
{
    struct xml_answer a;
    int rc = 0;

    if (resp->status < 200 || resp->status >= 300) {
        *result = call_error_text(c, resp);
        return 0;
    }
    if (answer_parse(resp, &a) == -1) {
        *result = xasprintf("%s: the answer is not an XML response", call_kind(c));
    } else if (strcmp(a.status, "success") != 0) {
        *result = xasprintf("%s: %s: %s", call_kind(c), a.code[0] ? a.code : "error",
                            a.msg.data ? a.msg.data : "");
    } else {
        *result = list ? json_print(a.entries) : xstrdup("true");
        rc = 1;
    }
    answer_free(&a);
    return rc;
}

static int
map_done(struct call *c, const struct httpc_response *resp, char **result)
{
    return map_answer(c, resp, result, 0);
}

static int
map_list(struct call *c, const struct httpc_response *resp, char **result)
{
    return map_answer(c, resp, result, 1);
}

/* ---- the API ---- */

static const char *
xmlapi_base(const struct tenant *t)
{
    const struct xmlapi_conf *x = tenant_conf(t, &xmlapi_section);

    return x != NULL ? x->url : NULL;
}

static int
xmlapi_credentials(const struct tenant *t, struct call_cred *cred, char **errp)
{
    const char *line = tenant_state(t, &xmlapi_section);

    if (line == NULL) {
        return kg_err(errp, "no API key for this tenant");
    }
    cred->kind = CALL_AUTH_HEADER;
    cred->header = line;
    return 0;
}

static const struct call_limit xmlapi_limits[] = {
    { "xmlapi", 10, 20 },
    { NULL, 0, 0 },
};

static const struct call_api xmlapi_api = {
    "xmlapi",
    xmlapi_base,
    "no xmlapi block is configured for this tenant (tenants.<id>.xmlapi)",
    xmlapi_credentials,
    "Accept: application/xml",
    xmlapi_limits,
    xmlapi_error_text,
};

/* Append s XML-escaped (text and attribute values alike). */
static void
xml_escape(struct buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        const char *e = *s == '<'    ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '&'  ? "&amp;"
                        : *s == '"'  ? "&quot;"
                        : *s == '\'' ? "&apos;"
                                     : NULL;

        (void)!(e != NULL ? buf_puts(b, e) : buf_append(b, s, 1));
    }
}

/* xmlapi.tag(ip, tag): a User-ID register message, sent as the form field cmd. */
static int
l_xmlapi_tag(lua_State *L)
{
    const char *ip = call_check_id(L, 1, "an IP address");
    const char *tag = call_check_id(L, 2, "a tag");
    struct call_spec spec = { 0 };
    struct buf xml;
    char *cmd;

    buf_init(&xml, 0);
    (void)!buf_puts(&xml, "<uid-message><version>2.0</version><type>update</type><payload>"
                          "<register><entry ip=\"");
    xml_escape(&xml, ip);
    (void)!buf_puts(&xml, "\"><tag><member>");
    xml_escape(&xml, tag);
    (void)!buf_puts(&xml, "</member></tag></entry></register></payload></uid-message>");
    cmd = call_escape(xml.data);
    buf_free(&xml);
    lua_pushfstring(L, "type=user-id&cmd=%s", cmd);
    free(cmd);
    spec.kind = "xmlapi.tag";
    spec.api = &xmlapi_api;
    spec.limiter = "xmlapi";
    spec.prio = LIMITER_CONTAIN;
    spec.idempotent = 1; /* registering a tag twice changes nothing */
    spec.method = "POST";
    spec.path = "/api/";
    spec.body = lua_tostring(L, -1);
    spec.body_format = CALL_BODY_FORM;
    spec.map = map_done;
    return call_effect(L, &spec);
}

/* xmlapi.tagged(): every registered IP with its tags. */
static int
l_xmlapi_tagged(lua_State *L)
{
    static const struct call_def def = {
        "xmlapi.tagged", &xmlapi_api, "xmlapi", LIMITER_ENRICH, 1, "GET", map_list,
    };
    char *cmd = call_escape("<show><object><registered-ip><all/></registered-ip></object></show>");

    lua_pushfstring(L, "/api/?type=op&cmd=%s", cmd);
    free(cmd);
    return call_def_effect(L, &def, lua_tostring(L, -1), NULL);
}

/* xmlapi.post_xml(document): POST the document itself as application/xml (the mock's
 * XML API takes forms only, so this shows how a raw XML body is sent, journaled and
 * refused). Not idempotent, not reconcilable. */
static int
l_xmlapi_post_xml(lua_State *L)
{
    struct call_spec spec = { 0 };

    spec.kind = "xmlapi.post_xml";
    spec.api = &xmlapi_api;
    spec.limiter = "xmlapi";
    spec.prio = LIMITER_NORMAL;
    spec.method = "POST";
    spec.path = "/api/";
    spec.body = luaL_checkstring(L, 1);
    spec.body_format = CALL_BODY_XML;
    spec.map = map_done;
    return call_effect(L, &spec);
}

static int
luaopen_kagari_xmlapi(lua_State *L)
{
    static const luaL_Reg xmlapi_funcs[] = {
        { "tag", l_xmlapi_tag },
        { "tagged", l_xmlapi_tagged },
        { "post_xml", l_xmlapi_post_xml },
        { NULL, NULL },
    };

    luaL_newlib(L, xmlapi_funcs);
    return 1;
}

static const struct connector xmlapi_connector = {
    "xmlapi",
    "a test-only XML API connector (the mock's PAN-OS User-ID slice)",
    luaopen_kagari_xmlapi,
    &xmlapi_section,
    xmlapi_tenant_open,
    xmlapi_tenant_close,
    call_init,
    call_shutdown,
};

static void xmlapi_register(void) __attribute__((constructor));

static void
xmlapi_register(void)
{
    plugin_add_connector(&xmlapi_connector);
}
