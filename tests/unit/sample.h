/* Shared by the manifest and policy unit tests: the sample packet's
 * manifest (synthetic patient), changed one field at a time. */
#ifndef TEST_SAMPLE_H
#define TEST_SAMPLE_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLE_MANIFEST	"examples/sample-packet/manifest.json"

/* Set (value != NULL, JSON text) or delete (value == NULL) a dotted path
 * such as "documents.0.file" in root.  0, or -1 if the path is not there. */
static inline int
sample_set(json_t *root, const char *path, const char *value)
{
	char	 buf[256], *p = buf, *dot;
	json_t	*cur = root, *v = NULL;

	strncpy(buf, path, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	if (value && (v = json_loads(value, JSON_DECODE_ANY, NULL)) == NULL)
		return -1;
	while ((dot = strchr(p, '.')) != NULL) {
		*dot = '\0';
		cur = json_is_array(cur) ? json_array_get(cur, strtoul(p, NULL, 10)) :
		    json_object_get(cur, p);
		if (cur == NULL)
			return -1;
		p = dot + 1;
	}
	if (json_is_array(cur))
		return v ? json_array_set_new(cur, strtoul(p, NULL, 10), v) :
		    json_array_remove(cur, strtoul(p, NULL, 10));
	return v ? json_object_set_new(cur, p, v) : json_object_del(cur, p);
}

/* The sample manifest as text, after up to two changes. */
static inline char *
sample_text(const char *path1, const char *value1, const char *path2,
    const char *value2)
{
	json_t	*root = json_load_file(SAMPLE_MANIFEST, 0, NULL);
	char	*text;

	if (root == NULL)
		abort();
	if (path1 && sample_set(root, path1, value1) == -1)
		abort();
	if (path2 && sample_set(root, path2, value2) == -1)
		abort();
	text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	return text;
}

#endif
