/* cmd.h: the descriptor each `kagari` verb exports, and the helpers the verbs share. */
#ifndef KAGARI_CMD_H
#define KAGARI_CMD_H

#include <getopt.h>

#include "engine/util.h"

struct config;
struct store;
struct cJSON;

/* One verb of the kagari command (tmux cmd_entry). main() picks the entry whose name is
 * argv[1] and lists usage and summary in `kagari --help`. */
struct cmd_entry {
    const char *name;    /* the verb as typed: "alert" */
    const char *usage;   /* as listed by kagari --help: "alert send" */
    const char *summary; /* one line for kagari --help */
    /* Run the verb with argv[0] being the verb itself; returns the exit status. */
    int (*exec)(int argc, char **argv);
};

extern const struct cmd_entry cmd_init_entry;
extern const struct cmd_entry cmd_serve_entry;
extern const struct cmd_entry cmd_status_entry;
extern const struct cmd_entry cmd_reload_entry;
extern const struct cmd_entry cmd_stop_entry;
extern const struct cmd_entry cmd_tenant_entry;
extern const struct cmd_entry cmd_alert_entry;
extern const struct cmd_entry cmd_alerts_entry;
extern const struct cmd_entry cmd_runs_entry;
extern const struct cmd_entry cmd_events_entry;
extern const struct cmd_entry cmd_run_entry;
extern const struct cmd_entry cmd_playbook_entry;
extern const struct cmd_entry cmd_state_entry;
extern const struct cmd_entry cmd_secret_entry;
extern const struct cmd_entry cmd_version_entry;
extern const struct cmd_entry cmd_user_entry;
extern const struct cmd_entry cmd_allow_entry;
extern const struct cmd_entry cmd_approvals_entry;
extern const struct cmd_entry cmd_approve_entry;
extern const struct cmd_entry cmd_escalation_entry;
extern const struct cmd_entry cmd_poll_entry;

/* `kagari alert show ...` (engine/cmd_alerts.c), argv[0] being "show". */
int cmd_alert_show(int argc, char **argv);

/* The configuration file to use without --config: $KAGARI_CONFIG or kagari.conf.lua. */
const char *cmd_default_config(void);

/* Print "kagari: <message>" on stderr. Always returns 1, the exit status of a failed verb. */
int cmd_fail(const char *fmt, ...) KG_PRINTF(1, 2);

/* Parse a verb's options with getopt_long, from argv[1]. --help (returned as 'h') stops
 * the parse; each is called with ud for every other option. Returns 0, 1 to show help,
 * or -1 on a bad option (getopt has printed it, or each returned -1). optind is left at
 * the first operand. */
int cmd_parse_opts(int argc, char **argv, const struct option *long_opts, const char *short_opts,
                   int (*each)(int c, const char *arg, void *ud), void *ud) KG_WUR;

/* An each for cmd_parse_opts when --config is the only option: ud is a const char **. */
int cmd_config_opt(int c, const char *arg, void *ud);

/* A point in time for --since/--until: a duration back from now ("24h", "15m", "7d",
 * "90s") or an RFC 3339 time ("2026-12-04T09:00:00Z", "2026-12-04T18:00:00+09:00"), or
 * a date ("2026-12-04", midnight UTC). 0 and *ms, or -1 when it is neither. */
int cmd_parse_when(const char *s, int64_t *ms) KG_WUR;

/* A positive count for --limit: 0 and *n, or -1. */
int cmd_parse_count(const char *s, int *n) KG_WUR;

/* Print text from the store as a terminal may show it: control characters, DEL, C1
 * controls, U+2028/U+2029 and invalid UTF-8 escaped, so that untrusted text (an alert,
 * a playbook's message) cannot drive the terminal. Newlines and tabs stay when keep_nl.
 * At most max bytes of s are shown (then "..."). */
void cmd_put_text(const char *s, size_t n, size_t max, int keep_nl);
/* Print a JSON value on one line with DEL, C1 controls and U+2028/9 written as their \u
 * escapes (the same JSON, nothing raw on the terminal), then a newline. */
void cmd_print_json(const struct cJSON *v);

/* Call fn(t, ud) for the tenant only (NULL: every tenant) whose database exists (one the
 * daemon has not created yet has nothing to show, and is not created here), opened for
 * the call. Stops at the first fn that returns -1. An unknown `only` is an error
 * (printed). Returns 0 or -1. */
struct store_tenant;
int cmd_each_tenant(struct store *st, const char *only, int (*fn)(struct store_tenant *, void *),
                    void *ud) KG_WUR;

/* A new intake token "kg_<64 hex>" that the caller frees, or NULL without randomness. */
char *cmd_new_token(void);

/* Load the configuration at config_path into *cfg and open its store. On success the
 * caller owns both (store_close, config_free); on failure the message is printed and
 * nothing is left to free. Returns 0 or -1. */
int cmd_open_store(const char *config_path, struct config *cfg, struct store **st) KG_WUR;
/* One line from stdin, at most max bytes (more is cut): on a terminal after prompt (on
 * stderr) and without echo; else the next line of stdin (scripts, tests). Malloc'd,
 * without its line end; "" at the end of input. */
char *cmd_read_secret(const char *prompt, size_t max);
/* Append an audit row written by the command line: actor "cli:<login name>", no address;
 * detail is JSON text or NULL. A failure is said on stderr, never returned. */
void cmd_audit(struct store *st, const char *tenant, const char *action, const char *target,
               const char *outcome, const char *detail);

/* cmd_each_tenant on the store of config_path, opened and closed around it. Returns the
 * exit status: 0, or 1 when the store could not be opened or a call failed. */
int cmd_tenants(const char *config_path, const char *only, int (*fn)(struct store_tenant *, void *),
                void *ud);

/* Parse s as a positive record id into *id; 0, or -1 with "not a WHAT id: s" printed. */
int cmd_parse_id(const char *s, const char *what, int64_t *id) KG_WUR;

/* `kagari playbook deploy FILE...` (engine/cmd_deploy.c): argv holds the files only;
 * config_path NULL: the default configuration. Returns the exit status. */
int cmd_playbook_deploy(int argc, char **argv, const char *config_path);
/* `kagari playbook history [NAME] [--tenant ID]`: the deployments of NAME, newest first
 * (without NAME: the latest one of each playbook), one line each: tenant, name, version,
 * time (UTC), deployer ("-": not recorded), how. Returns the exit status (1: none). */
int cmd_playbook_history(const char *name, const char *tenant, const char *config_path);

#endif
