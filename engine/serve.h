/* serve.h: `kagari serve`, the daemon. */
#ifndef KAGARI_SERVE_H
#define KAGARI_SERVE_H

#define KAGARI_VERSION "0.1.0"

/* Run the daemon with the configuration file at path until SIGTERM/SIGINT. Returns the
 * process exit status. */
int serve_main(const char *config_path);

#endif
