/* playbook.h: playbook files (playbooks/NAME.lua), their triggers and versions. A file
 * returns playbook{ name=, on={...}, run=function(alert) ... end }. */
#ifndef KAGARI_PLAYBOOK_H
#define KAGARI_PLAYBOOK_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/alert.h"
#include "engine/library.h"
#include "engine/sandbox.h"

/* One version of one playbook. Reference counted: the set holds one reference, each run
 * started from it another (playbook_ref / playbook_unref). */
struct playbook {
    int refs;
    char *name;
    char *file;        /* where it was read from; NULL for a version restored from a store */
    char *description; /* may be NULL */
    char *source;      /* the text, NUL-terminated */
    size_t len;
    char hash[65]; /* the version: sha256 hex of the source, and of its libraries' */
    /* The libraries it requires (directly or through each other), by name: part of the
     * version, stored with it, so a run resumed later uses the same library code. */
    struct playbook_lib *libs;
    size_t nlibs;

    /* trigger: on = { source = "x" | {"x","y*"}, min_severity = "medium",
     *                 outcome = "succeeded" | {...} } */
    char **sources; /* exact names or prefixes ending in '*'; NULL/0 = every source */
    size_t nsources;
    int min_severity; /* enum severity */
    char **outcomes;  /* NULL/0 = any */
    size_t noutcomes;

    double timeout;        /* seconds, 0 = the configured default */
    int dry_run;           /* connector calls recorded as "would do", nothing sent */
    uint64_t instructions; /* 0 = the configured default */
};

struct playbook_set {
    struct playbook **v;
    size_t n;
};

/* The playbook{} global: checks its argument is a table and returns it. */
int playbook_lua_define(lua_State *L);

/* Evaluate src (named file) in sb, whose globals must include playbook() (run.c's
 * sandbox does), and check the returned table. The libraries it requires are read from
 * the folder lib beside file. Returns a new playbook with one reference, or NULL and
 * *errp ("file:line: message" or "file: on.min_severity: ..."). */
struct playbook *playbook_parse(struct sandbox *sb, const char *file, const char *src, size_t len,
                                char **errp);
/* The same with the libraries read from lib_dir: each require "name" with a constant
 * name (found in the compiled code of the file and, in turn, of each library) is the
 * regular file lib_dir/name.lua, read as playbook files are (no symbolic link, no other
 * kind of file; names of letters, digits, '-' and '_' only). Every library is evaluated
 * once here, so an error in one (syntax, runtime, a require cycle, a missing file) fails
 * this playbook with the library's file and line. */
struct playbook *playbook_parse_dir(struct sandbox *sb, const char *file, const char *src,
                                    size_t len, const char *lib_dir, char **errp);
/* The same with the libraries given (a version restored from a store): no file is read. */
struct playbook *playbook_parse_libs(struct sandbox *sb, const char *file, const char *src,
                                     size_t len, const struct playbook_lib *libs, size_t nlibs,
                                     char **errp);
/* Read the playbook file at path (as playbook_set_load reads each one) and parse it with
 * the libraries of lib_dir (NULL: the folder lib beside it). */
struct playbook *playbook_load_file(struct sandbox *sb, const char *path, const char *lib_dir,
                                    char **errp);
void playbook_ref(struct playbook *pb);
void playbook_unref(struct playbook *pb); /* frees at zero; NULL is a no-op */

/* Load every *.lua file of dir, in name order, except the playbook tests (*_test.lua). Only regular
 * files that lie in dir itself are loaded: a symbolic link (wherever it points), a directory, a
 * FIFO, a device or a file that cannot be opened is refused with "path: refused: reason" and never
 * read. A file that fails is left out and its error appended to *errs (one line per file, may be
 * NULL); two playbooks with one name are an error for the second. Returns -1 only when
 * dir cannot be read. */
int playbook_set_load(struct sandbox *sb, const char *dir, struct playbook_set *set,
                      char **errs) KG_WUR;
/* The same with the libraries in lib_dir (NULL: dir/lib). */
int playbook_set_load_libs(struct sandbox *sb, const char *dir, const char *lib_dir,
                           struct playbook_set *set, char **errs) KG_WUR;
void playbook_set_free(struct playbook_set *set); /* drops the set's references */

/* Does the alert trigger the playbook? */
int playbook_matches(const struct playbook *pb, const struct alert *a);

#endif
