/* cmd_alert.c: `kagari alert send`, POST alerts to the intake over HTTP(S); `alert show`
 * is in engine/cmd_alerts.c. */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "engine/config.h"

#define CMD_ALERT_FILE_MAX (64u << 20)

struct cmd_alert_opts {
    const char *config, *url, *token, *source, *cacert, *token_file;
};

static int
cmd_alert_opt(int c, const char *arg, void *ud)
{
    struct cmd_alert_opts *o = ud;

    switch (c) {
    case 'c':
        o->config = arg;
        break;
    case 'u':
        o->url = arg;
        break;
    case 't':
        o->token = arg;
        break;
    case 's':
        o->source = arg;
        break;
    case 'a':
        o->cacert = arg;
        break;
    case 'f':
        o->token_file = arg;
        break;
    default:
        return -1;
    }
    return 0;
}

static size_t
cmd_alert_collect(char *p, size_t size, size_t n, void *ud)
{
    if (buf_append(ud, p, size * n) == -1) {
        return 0;
    }
    return size * n;
}

/* Keep the response's X-Request-Id (ud: char[64]) to name it when the intake refuses. */
static size_t
cmd_alert_header(char *p, size_t size, size_t n, void *ud)
{
    static const char name[] = "x-request-id:";
    size_t len = size * n, k = sizeof(name) - 1;
    char *id = ud;

    if (len > k && strncasecmp(p, name, k) == 0) {
        size_t i = k, j = 0;

        while (i < len && p[i] == ' ') {
            i++;
        }
        while (i < len && j < 63 && p[i] != '\r' && p[i] != '\n' &&
               ((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') || p[i] == '-')) {
            id[j++] = p[i++];
        }
        id[j] = '\0';
    }
    return len;
}

static int
cmd_alert_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' }, { "url", required_argument, NULL, 'u' },
        { "token", required_argument, NULL, 't' },  { "source", required_argument, NULL, 's' },
        { "cacert", required_argument, NULL, 'a' }, { "token-file", required_argument, NULL, 'f' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari alert send [--token TOKEN | --token-file FILE] [--url URL]\n"
        "                         [--source SOURCE] [--cacert PEM] [--config FILE] FILE|-\n"
        "       kagari alert show ID [--tenant ID] [--json | --raw] [--config FILE]\n"
        "POST the JSON in FILE (or standard input) to the intake: one alert, an array,\n"
        "or an Azure diagnostic {\"records\":[...]} envelope.\n"
        "  --token TOKEN   the tenant's intake token (default $KAGARI_TOKEN)\n"
        "  --token-file F  read the token from file F (its first line), e.g. the demo's\n"
        "                  var/intake.token: the token stays out of ps and shell history\n"
        "  --url URL       intake URL (default from the configuration's intake.listen)\n"
        "  --source NAME   source for records that name none (?source=)\n"
        "  --cacert PEM    trust this CA for an HTTPS intake (default: the system's)\n"
        "  --config FILE   configuration giving the intake address (default\n"
        "                  $KAGARI_CONFIG or kagari.conf.lua)\n"
        "show: one stored alert, its raw record and the runs it started (alert show --help).\n";
    struct cmd_alert_opts o = {
        cmd_default_config(), NULL, getenv("KAGARI_TOKEN"), NULL, NULL, NULL,
    };
    char *file_token = NULL;
    struct config cfg;
    int have_cfg = 0;
    char *body = NULL, *err = NULL, *url = NULL, *auth = NULL;
    size_t len = 0;
    CURL *curl = NULL;
    struct curl_slist *hdrs = NULL;
    struct buf resp;
    long code = 0;
    int rc = 1;
    char request_id[64] = "";
    int r;

    if (argc >= 2 && strcmp(argv[1], "show") == 0) {
        return cmd_alert_show(argc - 1, argv + 1);
    }
    r = cmd_parse_opts(argc, argv, lo, "h", cmd_alert_opt, &o);
    if (r != 0 || optind + 2 != argc || strcmp(argv[optind], "send") != 0) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (o.token_file != NULL) {
        file_token = util_read_file(o.token_file, 4096, &len, &err);
        if (file_token == NULL) {
            rc = cmd_fail("%s", err);
            free(err);
            return rc;
        }
        file_token[strcspn(file_token, "\r\n")] = '\0';
        if (file_token[0] == '\0') {
            free(file_token);
            return cmd_fail("%s: no token in the file", o.token_file);
        }
        o.token = file_token;
        len = 0;
    }
    if (o.token == NULL) {
        return cmd_fail("%s", "no token: pass --token, --token-file or set KAGARI_TOKEN");
    }
    if (o.url == NULL) {
        if (config_load(o.config, &cfg, &err) == -1) {
            fprintf(stderr, "kagari: %s (or pass --url)\n", err);
            free(err);
            free(file_token);
            return 1;
        }
        have_cfg = 1;
        url = xasprintf("%s://%s/api/v1/alerts", cfg.intake.tls_cert ? "https" : "http",
                        cfg.intake.listen);
    } else {
        url = xstrdup(o.url);
    }
    if (o.source != NULL) {
        char *u2 = xasprintf("%s?source=%s", url, o.source);

        free(url);
        url = u2;
    }
    body = util_read_file(strcmp(argv[optind + 1], "-") == 0 ? "/dev/stdin" : argv[optind + 1],
                          CMD_ALERT_FILE_MAX, &len, &err);
    if (body == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        goto out;
    }
    buf_init(&resp, 1 << 20);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    auth = xasprintf("Authorization: Bearer %s", o.token);
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cmd_alert_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, cmd_alert_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, request_id);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    if (o.cacert != NULL) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, o.cacert);
    }
    if (curl_easy_perform(curl) != CURLE_OK) {
        fprintf(stderr, "kagari: cannot reach %s\n", url);
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        printf("%ld %s\n", code, resp.data ? resp.data : "");
        rc = code >= 200 && code < 300 ? 0 : 1;
        if (rc != 0 && request_id[0] != '\0') {
            fprintf(stderr,
                    "kagari: refused; request id %s (the daemon's log has an intake.rejected "
                    "line with request=%s)\n",
                    request_id, request_id);
        }
    }
    buf_free(&resp);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
out:
    free(file_token);
    free(auth);
    free(body);
    free(err);
    free(url);
    if (have_cfg) {
        config_free(&cfg);
    }
    return rc;
}

const struct cmd_entry cmd_alert_entry = {
    .name = "alert",
    .usage = "alert send|show",
    .summary = "post alerts to the intake; show one stored alert",
    .exec = cmd_alert_exec,
};
