/* main.c: the kagari command: the table of verbs (engine/cmd_*.c) and the dispatch to them. */
#include <stdio.h>
#include <string.h>

#include "engine/cmd.h"
#include "engine/escalate.h"
#include "engine/plugin.h"
#include "engine/registry.h"
#include "engine/testclock.h"

/* Every verb, in the order `kagari --help` lists them. */
static const struct cmd_entry *const main_verbs[] = {
    &cmd_init_entry,      &cmd_serve_entry,   &cmd_status_entry,     &cmd_reload_entry,
    &cmd_stop_entry,      &cmd_tenant_entry,  &cmd_alert_entry,      &cmd_alerts_entry,
    &cmd_runs_entry,      &cmd_run_entry,     &cmd_playbook_entry,   &cmd_state_entry,
    &cmd_secret_entry,    &cmd_version_entry, &cmd_user_entry,       &cmd_allow_entry,
    &cmd_approvals_entry, &cmd_approve_entry, &cmd_escalation_entry, &cmd_events_entry,
    &cmd_poll_entry,
};

static void
main_usage(FILE *f)
{
    const struct plugin_verb *const *pv;
    size_t npv = plugin_verbs(&pv);

    fputs("usage: kagari VERB [options]   (kagari VERB --help for each)\n", f);
    for (size_t i = 0; i < sizeof(main_verbs) / sizeof(main_verbs[0]); i++) {
        fprintf(f, "  %-15s %s\n", main_verbs[i]->usage, main_verbs[i]->summary);
    }
    for (size_t i = 0; i < npv; i++) {
        fprintf(f, "  %-15s %s\n", pv[i]->usage, pv[i]->summary);
    }
}

int
main(int argc, char **argv)
{
    registry_init(); /* every verb sees the plug-ins: their settings blocks, their modules */
    escalate_config_init();
    testclock_config_init();
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        main_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        return cmd_version_entry.exec(argc - 1, argv + 1);
    }
    for (size_t i = 0; i < sizeof(main_verbs) / sizeof(main_verbs[0]); i++) {
        if (strcmp(argv[1], main_verbs[i]->name) == 0) {
            return main_verbs[i]->exec(argc - 1, argv + 1);
        }
    }
    {
        /* A plug-in's own set-up verb (engine/registry.c lists them). */
        const struct plugin_verb *const *pv;
        size_t npv = plugin_verbs(&pv);

        for (size_t i = 0; i < npv; i++) {
            if (strcmp(argv[1], pv[i]->name) == 0) {
                return pv[i]->exec(argc - 1, argv + 1);
            }
        }
    }
    fprintf(stderr, "kagari: unknown verb '%s'\n", argv[1]);
    main_usage(stderr);
    return 2;
}
