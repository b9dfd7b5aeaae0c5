/* rest.c: the playbooks' generic `http` module: JSON requests to the hosts on the
 * tenant's allow list (tenants.<id>.http.allow), journaled like every connector call.
 * The answer is data whatever its status: the playbook decides what a 4xx means. */
#include "connectors/rest.h"

#include <arpa/inet.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "connectors/call.h"

#define REST_URL_MAX 8192
#define REST_BODY_MAX (1024 * 1024)
#define REST_HEADERS_MAX 32
#define REST_HEADER_NAME_MAX 64
#define REST_HEADER_VALUE_MAX 8192
#define REST_IDEM_KEY_MAX 255
/* Bodies beyond this are cut in the result (the journal keeps what the playbook gets). */
#define REST_RESULT_MAX (1024 * 1024)

/* Headers the transfer itself owns: a playbook setting them could break the framing
 * (or, for Content-Type, contradict the JSON body the module always sends). */
static const char *const reserved_headers[] = { "host",
                                                "content-length",
                                                "transfer-encoding",
                                                "connection",
                                                "content-type",
                                                "expect",
                                                "upgrade",
                                                "te",
                                                "trailer",
                                                NULL };

/* 1 for an RFC 9110 token character. */
static int
tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Check the headers table at idx and collect "Name: value" lines into a new table
 * pushed on the stack; returns their number. Raises on a bad name or value (CR, LF,
 * NUL or another control character, too long, reserved). */
static int
check_headers(lua_State *L, int idx)
{
    int n = 0;

    lua_newtable(L);
    if (lua_isnil(L, idx)) {
        return 0;
    }
    if (!lua_istable(L, idx)) {
        luaL_error(L, "http.request: headers: expected a table of name = value");
    }
    lcheck_plain(L, idx); /* a library's table: read raw below */
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *name, *value;
        size_t nlen, vlen;

        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
            luaL_error(L, "http.request: headers: names and values must be strings");
        }
        name = lua_tolstring(L, -2, &nlen);
        value = lua_tolstring(L, -1, &vlen);
        if (nlen == 0 || nlen > REST_HEADER_NAME_MAX) {
            luaL_error(L, "http.request: headers: bad header name");
        }
        for (size_t i = 0; i < nlen; i++) {
            if (!tchar((unsigned char)name[i])) {
                luaL_error(L, "http.request: headers: bad header name");
            }
        }
        for (int i = 0; reserved_headers[i] != NULL; i++) {
            if (strcasecmp(name, reserved_headers[i]) == 0) {
                luaL_error(L, "http.request: headers: %s is set by the module", name);
            }
        }
        if (vlen > REST_HEADER_VALUE_MAX) {
            luaL_error(L, "http.request: headers: value of %s is too long", name);
        }
        for (size_t i = 0; i < vlen; i++) {
            unsigned char ch = (unsigned char)value[i];

            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                luaL_error(L,
                           "http.request: headers: value of %s has a control character "
                           "(CR, LF or NUL)",
                           name);
            }
        }
        if (++n > REST_HEADERS_MAX) {
            luaL_error(L, "http.request: headers: more than %d", REST_HEADERS_MAX);
        }
        lua_pushfstring(L, "%s: %s", name, value);
        lua_rawseti(L, -4, n);
        lua_pop(L, 1);
    }
    return n;
}

/* Check the body at idx: a table (JSON-encoded with the playbooks' json.encode) or a
 * string of JSON text. Pushes the JSON text, or nil for no body. Raises on misuse. */
static void
check_body(lua_State *L, int idx)
{
    size_t len;
    const char *s;
    cJSON *tree = NULL;
    char *err = NULL;

    if (lua_isnil(L, idx)) {
        lua_pushnil(L);
        return;
    }
    if (lua_istable(L, idx)) {
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_getfield(L, -1, "json");
        if (!lua_istable(L, -1)) {
            luaL_error(L, "http.request: body: the json module is not loaded");
        }
        lua_getfield(L, -1, "encode");
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1); /* raises "json.encode: ..." on a value JSON cannot hold */
        lua_replace(L, -3);
        lua_pop(L, 1);
    } else if (lua_type(L, idx) == LUA_TSTRING) {
        s = lua_tolstring(L, idx, &len);
        if (json_parse_strict(s, len, JSON_MAX_DEPTH, &tree, &err) == -1) {
            lua_pushfstring(L, "http.request: body: a string body must be JSON text (%s)",
                            err ? err : "invalid");
            free(err);
            lua_error(L);
        }
        cJSON_Delete(tree);
        lua_pushvalue(L, idx);
    } else {
        luaL_error(L, "http.request: body: expected a table or a JSON string");
    }
    if (lua_rawlen(L, -1) > REST_BODY_MAX) {
        luaL_error(L, "http.request: body: more than %d bytes", REST_BODY_MAX);
    }
}

static const struct config_field rest_fields[] = {
    { "allow", CONFIG_HOSTS, offsetof(struct rest_conf, allow), 0, 0, NULL,
      offsetof(struct rest_conf, nallow) },
    CONFIG_FIELDS_END,
};

static const char rest_example[] =
    "--         -- Host names the generic http module may call; it refuses any other host.\n"
    "--         http = { allow = { \"hooks.example.jp\", \"api.example.net\" } },\n";

const struct config_section rest_section = {
    "http", rest_fields, sizeof(struct rest_conf), NULL, rest_example,
};

/* Plain HTTP: the path is the whole URL, no credentials, no buckets. */
static const char *
rest_base(const struct tenant *t)
{
    (void)t;
    return "";
}

static const struct call_api rest_api = {
    "http", rest_base, NULL, NULL, NULL, NULL, NULL,
};

/* 1 when host:port (libcurl's form: IPv6 in brackets) is on the tenant's allow list:
 * an entry "host" allows the scheme's default port only, "host:port" that port. */
static int
host_allowed(const struct tenant *t, const char *host, int port, int default_port)
{
    const struct rest_conf *rc = t != NULL ? tenant_conf(t, &rest_section) : NULL;
    size_t hlen = strlen(host);

    for (size_t i = 0; rc != NULL && i < rc->nallow; i++) {
        const char *e = rc->allow[i];

        if (strncasecmp(e, host, hlen) != 0) {
            continue;
        }
        if (e[hlen] == '\0' && port == default_port) {
            return 1;
        }
        if (e[hlen] == ':' && atoi(e + hlen + 1) == port) {
            return 1;
        }
    }
    return 0;
}

/* 1 when host (libcurl's form) is loopback: localhost, 127.0.0.0/8 or [::1], the only
 * hosts plain http may reach (as httpc enforces too). */
static int
host_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    char tmp[INET6_ADDRSTRLEN];
    size_t n = strlen(host);

    if (strcasecmp(host, "localhost") == 0) {
        return 1;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (n > 2 && n - 2 < sizeof(tmp) && host[0] == '[' && host[n - 1] == ']') {
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        return inet_pton(AF_INET6, tmp, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return 0;
}

/* Parse url with libcurl's parser (the one that will send it, so both agree on the
 * host) and push its normalized form. Returns NULL with a message in err (a static
 * string) when it is not an absolute https URL (http only to loopback) without user
 * info; or err NULL and *host_ok 0 when its host and port are not on the allow list,
 * -1 when it names one of the engine's own listeners on loopback. */
static const char *
push_url(lua_State *L, const struct tenant *t, const char *url, int *host_ok, const char **err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL, *full = NULL, *port = NULL;
    const char *out = NULL;

    *host_ok = 0;
    *err = "not an absolute http(s) URL";
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        *err = "user info in URLs is not allowed (use an Authorization header)";
        goto out;
    }
    if (strcmp(scheme, "https") != 0 && !(strcmp(scheme, "http") == 0 && host_loopback(host))) {
        *err = "only https URLs are allowed (http only to loopback)";
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        goto out;
    }
    if (host_loopback(host) && util_own_port(atoi(port))) {
        /* A run posting to the engine's own intake would feed itself alerts. */
        *err = NULL;
        *host_ok = -1;
        goto out;
    }
    *err = NULL;
    *host_ok = host_allowed(t, host, atoi(port), strcmp(scheme, "https") == 0 ? 443 : 80);
    if (*host_ok && curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK) {
        lua_pushstring(L, full);
        out = lua_tostring(L, -1);
    } else if (*host_ok) {
        *err = "not an absolute http(s) URL";
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_free(full);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

/* Append s[0..n) to b as the inside of a JSON string: invalid UTF-8 and NUL bytes
 * become U+FFFD, so that the journaled result is always valid JSON. */
static void
json_text(struct buf *b, const unsigned char *s, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len = 0;

        if (c >= 0x01 && c < 0x80) {
            len = 1;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
        }
        if (len > 1) {
            unsigned char lo = 0x80, hi = 0xbf;

            if (c == 0xe0) {
                lo = 0xa0;
            } else if (c == 0xed) {
                hi = 0x9f; /* no surrogates */
            } else if (c == 0xf0) {
                lo = 0x90;
            } else if (c == 0xf4) {
                hi = 0x8f; /* at most U+10FFFF */
            }
            if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) {
                len = 0;
            }
            for (size_t k = 2; len != 0 && k < len; k++) {
                if (s[i + k] < 0x80 || s[i + k] > 0xbf) {
                    len = 0;
                }
            }
        }
        if (len == 0) {
            (void)!buf_puts(b, "\\ufffd");
            i++;
        } else if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };

            (void)!buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[6] = { '\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15] };

            (void)!buf_append(b, esc, 6);
            i++;
        } else {
            (void)!buf_append(b, s + i, len);
            i += len;
        }
    }
}

/* Every answer that reaches here is the playbook's data: {"status":N,"body":"...",
 * "json":<decoded body when it is JSON>[,"truncated":true]}. Transport failures,
 * 429/503/504 after the retries, and a circuit left open never get here: they fail the
 * call (nil, message). */
static int
map_response(struct call *c, const struct httpc_response *resp, char **result)
{
    size_t n = resp->body_len > REST_RESULT_MAX ? REST_RESULT_MAX : resp->body_len;
    cJSON *tree = NULL;
    struct buf b;

    (void)c;
    buf_init(&b, 0);
    (void)!buf_printf(&b, "{\"status\":%d,\"body\":\"", resp->status);
    json_text(&b, (const unsigned char *)resp->body, n);
    (void)!buf_puts(&b, "\"");
    if (n < resp->body_len) {
        (void)!buf_puts(&b, ",\"truncated\":true");
    } else if (n > 0 &&
               ((resp->content_type != NULL && strstr(resp->content_type, "json") != NULL) ||
                resp->body[strspn(resp->body, " \t\r\n")] == '{' ||
                resp->body[strspn(resp->body, " \t\r\n")] == '[') &&
               json_parse_strict(resp->body, n, JSON_MAX_DEPTH - 1, &tree, NULL) == 0) {
        char *j = json_print(tree);

        (void)!buf_puts(&b, ",\"json\":");
        (void)!buf_puts(&b, j);
        free(j);
        cJSON_Delete(tree);
    }
    (void)!buf_puts(&b, "}");
    *result = buf_take(&b);
    return 1;
}

/* The idempotency_key field (on the stack at idx) as a string of 1 to 255 printable
 * ASCII characters that neither starts nor ends with a space (a header value's edges
 * are trimmed on the way), or NULL when absent. Raises on anything else. */
static const char *
check_idempotency_key(lua_State *L, int idx)
{
    const char *key;
    size_t len;

    if (lua_isnil(L, idx)) {
        return NULL;
    }
    key = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    luaL_argcheck(L, key != NULL && len >= 1 && len <= REST_IDEM_KEY_MAX, 1,
                  "idempotency_key: a string of 1 to 255 printable ASCII characters");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)key[i];

        luaL_argcheck(L, ch >= 0x20 && ch < 0x7f, 1,
                      "idempotency_key: printable ASCII characters only");
    }
    luaL_argcheck(L, key[0] != ' ' && key[len - 1] != ' ', 1,
                  "idempotency_key: no leading or trailing space");
    return key;
}

/* http.request{ method =, url =, headers = { name = value }, body = table or JSON text,
 * timeout =, idempotency_key = } -> { status =, body =, json = } | nil, err. GET and
 * HEAD may be repeated after a crash or a lost answer; so may any request with an
 * idempotency key (sent as Idempotency-Key, the same on every attempt). Any other
 * request whose answer is lost fails rather than risk sending it twice. */
static int
l_http_request(lua_State *L)
{
    static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", NULL };
    static const char *const keys[] = { "method",          "url", "headers", "body", "timeout",
                                        "idempotency_key", NULL };
    struct call_spec spec = { 0 };
    struct run *r = run_from_lua(L);
    const char *method = "GET", *url, *err, *idem;
    const char **lines;
    size_t ulen;
    int nh, hdr_tab, host_ok;

    if (r == NULL) {
        return luaL_error(L, "http.request: only inside a playbook run");
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lcheck_unknown_key(L, 1, keys)) {
        return luaL_error(L, "http.request: unknown field %s", lua_tostring(L, -1));
    }
    lua_getfield(L, 1, "timeout");
    if (!lua_isnil(L, -1)) {
        double secs = -1;

        if (lua_type(L, -1) == LUA_TNUMBER) {
            secs = lua_tonumber(L, -1);
        } else if (lua_type(L, -1) != LUA_TSTRING ||
                   util_parse_duration(lua_tostring(L, -1), &secs) == -1) {
            secs = -1;
        }
        luaL_argcheck(L, secs > 0 && secs <= 300, 1,
                      "timeout: seconds or a duration such as \"5s\", at most 5 minutes");
        spec.timeout = secs;
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "method"); /* 2 */
    if (!lua_isnil(L, 2)) {
        int m = -1;

        if (lua_type(L, 2) == LUA_TSTRING) {
            for (int i = 0; methods[i] != NULL; i++) {
                if (strcasecmp(lua_tostring(L, 2), methods[i]) == 0) {
                    m = i;
                }
            }
        }
        luaL_argcheck(L, m >= 0, 1, "method: GET, HEAD, POST, PUT, PATCH or DELETE");
        method = methods[m];
    }
    lua_getfield(L, 1, "url"); /* 3 */
    url = lua_type(L, 3) == LUA_TSTRING ? lua_tolstring(L, 3, &ulen) : NULL;
    luaL_argcheck(L, url != NULL && ulen > 0 && ulen <= REST_URL_MAX && strlen(url) == ulen, 1,
                  "url: expected an https URL");
    lua_getfield(L, 1, "headers"); /* 4 */
    nh = check_headers(L, 4);      /* 5: the lines */
    hdr_tab = 5;
    lua_getfield(L, 1, "body"); /* 6 */
    check_body(L, 6);           /* 7: JSON text or nil */
    luaL_argcheck(L, lua_isnil(L, 7) || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0),
                  1, "body: not with GET or HEAD");
    spec.body = lua_tostring(L, 7);
    lines = NULL;
    if (nh > 0) {
        lines = lua_newuserdatauv(L, (size_t)(nh + 1) * sizeof(*lines), 0); /* 8 */
        for (int i = 0; i < nh; i++) {
            lua_rawgeti(L, hdr_tab, i + 1);
            lines[i] = lua_tostring(L, -1); /* kept alive by the table at hdr_tab */
            lua_pop(L, 1);
        }
        lines[nh] = NULL;
    }
    lua_getfield(L, 1, "idempotency_key"); /* kept on the stack until the call is made */
    idem = check_idempotency_key(L, -1);
    for (int i = 0; idem != NULL && i < nh; i++) {
        luaL_argcheck(L, strncasecmp(lines[i], "Idempotency-Key:", 16) != 0, 1,
                      "headers: Idempotency-Key is set by idempotency_key");
    }
    spec.path = push_url(L, run_tenant(r), url, &host_ok, &err);
    if (err != NULL) {
        return luaL_error(L, "http.request: url: %s", err);
    }
    if (host_ok != 1) {
        luaL_pushfail(L);
        if (host_ok == -1) {
            lua_pushliteral(L, "refused: the engine's own listener");
        } else {
            lua_pushliteral(L, "host not allowed");
        }
        return 2;
    }
    spec.kind = "http.request";
    spec.api = &rest_api;
    spec.limiter = "http";
    spec.prio = LIMITER_NORMAL;
    spec.method = method;
    spec.idempotent = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    spec.map = map_response;
    spec.headers = lines;
    spec.idempotency_key = idem;
    return call_effect(L, &spec);
}

static int
luaopen_kagari_http(lua_State *L)
{
    static const luaL_Reg http_funcs[] = {
        { "request", l_http_request },
        { NULL, NULL },
    };

    luaL_newlib(L, http_funcs);
    return 1;
}

const struct connector rest_connector = {
    "http",
    "JSON requests to the hosts on the tenant's allow list",
    luaopen_kagari_http,
    &rest_section,
    NULL,
    NULL,
    call_init,
    call_shutdown,
};
