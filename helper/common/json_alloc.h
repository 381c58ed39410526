/* jansson with an allocator that wipes every block it frees: API answers carry
 * tokens, and jansson copies strings freely. Call once at start. */
#ifndef KC_JSON_H
#define KC_JSON_H

void kc_json_secure_init(void);
/* Frees what jansson allocated for the caller (json_dumps() results). */
void kc_json_free(void *p);

#endif
