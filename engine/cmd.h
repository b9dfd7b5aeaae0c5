/* cmd.h: the descriptor each `kagari` verb exports, and the helpers the verbs share. */
#ifndef KAGARI_CMD_H
#define KAGARI_CMD_H

#include <getopt.h>

#include "engine/util.h"

struct config;
struct store;

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
extern const struct cmd_entry cmd_tenant_entry;
extern const struct cmd_entry cmd_alert_entry;
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

/* A new intake token "kg_<64 hex>" that the caller frees, or NULL without randomness. */
char *cmd_new_token(void);

/* Load the configuration at config_path into *cfg and open its store. On success the
 * caller owns both (store_close, config_free); on failure the message is printed and
 * nothing is left to free. Returns 0 or -1. */
int cmd_open_store(const char *config_path, struct config *cfg, struct store **st) KG_WUR;

#endif
