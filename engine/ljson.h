/* ljson.h: the playbooks' json module and conversions between Lua values and JSON. */
#ifndef KAGARI_LJSON_H
#define KAGARI_LJSON_H

#include <cjson/cJSON.h>
#include <lua.h>

/* json.encode(v) -> string | raises; json.decode(s) -> value | nil, err; json.null;
 * json.array(t) marks t so that it encodes as an array even when empty.
 * Decoded arrays carry that marker too, so they round-trip. */
int luaopen_kagari_json(lua_State *L);

/* Push the Lua value for item. Arrays get the array marker; null becomes json.null.
 * Raises on Lua errors (memory); call from a protected context. */
void ljson_push(lua_State *L, const cJSON *item);
/* Push the value of a JSON text (used to return journaled results). Returns 0, or -1
 * with an error message pushed instead when the text is not JSON. */
int ljson_push_text(lua_State *L, const char *text, size_t len);
/* Convert the value at idx to JSON. Tables with keys 1..n (or the array marker) become
 * arrays, other tables objects with string keys; functions, userdata, threads, cycles,
 * NaN/inf and depth > 64 are errors. Returns NULL and sets *errp on error. */
cJSON *ljson_from_lua(lua_State *L, int idx, char **errp);

#endif
