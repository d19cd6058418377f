/*
 * henge_dtls: DTLS 1.2 with pre-shared keys, done by OpenSSL (the copy inside the node binary: its
 * symbols are resolved at load time, no second OpenSSL is linked). This file holds no handshake or record
 * code of its own: it moves datagrams between JavaScript and OpenSSL through a BIO that keeps datagram
 * boundaries, and exposes the few calls a server needs:
 *
 *   createServer({ ciphers, pskLookup, mtu })        a context; pskLookup(identity) -> Buffer | null
 *   listen(server, peerKey, datagram)                 stateless cookie exchange (DTLSv1_listen): returns
 *                                                     { out, session }; a session only for a verified cookie
 *   feed(session, datagram)                           handshake or records in -> { out, data, state, ... }, or
 *                                                     just the plaintext Buffer for the usual one-record datagram
 *   write(session, plaintext)                         one record out -> the datagram Buffer, or { out, ... }
 *   timeout(session)                                  handshake retransmission (DTLSv1_handle_timeout)
 *   close(session)                                    close_notify out, then the session is freed
 *   createClient({ ciphers, identity, key, mtu })     a client session: { out (the ClientHello), session }
 *
 * Every function checks its arguments and reports failures as JavaScript errors or in its result; input
 * sizes are bounded (HENGE_MAX_DATAGRAM, HENGE_MAX_OUT).
 */
#include <node_api.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <string.h>

#define HENGE_MAX_DATAGRAM 16640 /* a DTLS record at most: 2^14 plaintext plus overhead */
#define HENGE_MAX_OUT 64         /* datagrams one call may produce (a handshake flight is a few) */
#define HENGE_MAX_PEER 96        /* "address%port" */
#define HENGE_SECRET_BYTES 32
#define HENGE_COOKIE_BYTES 16
#define HENGE_MAX_CIPHERS 256
#define HENGE_COOKIE_ROTATE_S 300

enum henge_state { HENGE_HANDSHAKING = 0, HENGE_OPEN = 1, HENGE_CLOSED = 2 };

typedef struct {
  unsigned char *data;
  size_t len;
} henge_buf;

/* What the BIO of one SSL object holds: at most one datagram to read, the datagrams written. */
typedef struct {
  unsigned char *rx;
  size_t rx_len;
  int peek;
  henge_buf out[HENGE_MAX_OUT];
  size_t out_count;
  size_t out_dropped;
  char peer[HENGE_MAX_PEER];
  size_t peer_len;
} henge_bio_state;

typedef struct {
  SSL_CTX *ctx;
  napi_env env;
  napi_ref psk_lookup;
  /* Cookie secrets: the current one makes cookies, the previous one still verifies; rotated every few minutes
   * so that a cookie seen on the network is worth nothing for long. */
  unsigned char secret[2][HENGE_SECRET_BYTES];
  time_t rotated_at;
  SSL *listener;
  BIO_ADDR *listen_addr;
  long link_mtu;
} henge_server;

typedef struct {
  SSL *ssl;
  henge_server *server; /* NULL for a client session */
  napi_ref server_ref;
  int state;
  SSL_CTX *client_ctx; /* a client session owns its context */
} henge_session;

/* What a client presents: its identity and key (kept in its context's ex data). */
typedef struct {
  char identity[PSK_MAX_IDENTITY_LEN + 1];
  unsigned char key[PSK_MAX_PSK_LEN];
  size_t key_len;
} henge_client_psk;

static BIO_METHOD *henge_bio_method = NULL;

/* ---------------------------------------------------------------------------------------------- */
/* The datagram BIO                                                                                */
/* ---------------------------------------------------------------------------------------------- */

static void henge_rx_clear(henge_bio_state *st) {
  free(st->rx);
  st->rx = NULL;
  st->rx_len = 0;
}

static void henge_out_clear(henge_bio_state *st) {
  for (size_t i = 0; i < st->out_count; i++) free(st->out[i].data);
  st->out_count = 0;
  st->out_dropped = 0;
}

static int henge_bio_create(BIO *b) {
  henge_bio_state *st = calloc(1, sizeof *st);
  if (st == NULL) return 0;
  BIO_set_data(b, st);
  BIO_set_init(b, 1);
  return 1;
}

static int henge_bio_destroy(BIO *b) {
  henge_bio_state *st = BIO_get_data(b);
  if (st != NULL) {
    henge_rx_clear(st);
    henge_out_clear(st);
    free(st);
  }
  BIO_set_data(b, NULL);
  return 1;
}

static int henge_bio_write(BIO *b, const char *data, int len) {
  henge_bio_state *st = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (st == NULL || data == NULL || len <= 0) return 0;
  if (st->out_count >= HENGE_MAX_OUT) {
    st->out_dropped++; /* a datagram lost on the way: DTLS copes, as with any loss */
    return len;
  }
  unsigned char *copy = malloc((size_t)len);
  if (copy == NULL) return -1;
  memcpy(copy, data, (size_t)len);
  st->out[st->out_count].data = copy;
  st->out[st->out_count].len = (size_t)len;
  st->out_count++;
  return len;
}

static int henge_bio_read(BIO *b, char *out, int outl) {
  henge_bio_state *st = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (st == NULL || out == NULL || outl <= 0) return 0;
  if (st->rx == NULL) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = st->rx_len < (size_t)outl ? st->rx_len : (size_t)outl; /* datagram semantics: the rest is lost */
  memcpy(out, st->rx, n);
  if (!st->peek) henge_rx_clear(st);
  return (int)n;
}

static long henge_bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  henge_bio_state *st = BIO_get_data(b);
  (void)ptr;
  if (st == NULL) return 0;
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return st->rx != NULL ? (long)st->rx_len : 0;
    case BIO_CTRL_WPENDING:
      return 0;
    case BIO_CTRL_DGRAM_SET_PEEK_MODE:
      st->peek = num != 0;
      return 1;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
      return 48; /* IPv6 + UDP headers, the larger case */
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_MTU_EXCEEDED:
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
    default:
      return 0;
  }
}

static int henge_bio_init_method(void) {
  if (henge_bio_method != NULL) return 1;
  int index = BIO_get_new_index();
  if (index == -1) return 0;
  BIO_METHOD *m = BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "henge datagram");
  if (m == NULL) return 0;
  if (!BIO_meth_set_write(m, henge_bio_write) || !BIO_meth_set_read(m, henge_bio_read) || !BIO_meth_set_ctrl(m, henge_bio_ctrl) ||
      !BIO_meth_set_create(m, henge_bio_create) || !BIO_meth_set_destroy(m, henge_bio_destroy)) {
    BIO_meth_free(m);
    return 0;
  }
  henge_bio_method = m;
  return 1;
}

static henge_bio_state *henge_state_of(SSL *ssl) {
  BIO *b = SSL_get_rbio(ssl);
  return b != NULL ? BIO_get_data(b) : NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* OpenSSL callbacks: PSK lookup (in JavaScript) and stateless cookies (HMAC of the peer)          */
/* ---------------------------------------------------------------------------------------------- */

static henge_server *henge_server_of(SSL *ssl) {
  return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0);
}

static unsigned int henge_psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk, unsigned int max_psk_len) {
  henge_server *s = henge_server_of(ssl);
  if (s == NULL || identity == NULL) return 0;
  size_t id_len = strnlen(identity, PSK_MAX_IDENTITY_LEN + 1);
  if (id_len == 0 || id_len > PSK_MAX_IDENTITY_LEN) return 0;
  napi_env env = s->env;
  napi_value fn, recv, arg, result;
  if (napi_get_reference_value(env, s->psk_lookup, &fn) != napi_ok || fn == NULL) return 0;
  if (napi_get_undefined(env, &recv) != napi_ok) return 0;
  if (napi_create_string_utf8(env, identity, id_len, &arg) != napi_ok) return 0;
  napi_status status = napi_call_function(env, recv, fn, 1, &arg, &result);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored); /* a failing lookup is an unknown identity */
    return 0;
  }
  if (status != napi_ok) return 0;
  bool is_buffer = false;
  if (napi_is_buffer(env, result, &is_buffer) != napi_ok || !is_buffer) return 0;
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, result, &data, &len) != napi_ok) return 0;
  if (len == 0 || len > max_psk_len || len > PSK_MAX_PSK_LEN) return 0;
  memcpy(psk, data, len);
  return (unsigned int)len;
}

/* The cookie for the peer of `ssl` under secret `which` (0 current, 1 previous); rotates the secrets when due. */
static int henge_cookie_for(SSL *ssl, int which, unsigned char *out, unsigned int *out_len) {
  henge_server *s = henge_server_of(ssl);
  henge_bio_state *st = henge_state_of(ssl);
  if (s == NULL || st == NULL || st->peer_len == 0) return 0;
  time_t now = time(NULL);
  if (now - s->rotated_at >= HENGE_COOKIE_ROTATE_S) {
    unsigned char next[HENGE_SECRET_BYTES];
    if (RAND_bytes(next, HENGE_SECRET_BYTES) == 1) {
      memcpy(s->secret[1], s->secret[0], HENGE_SECRET_BYTES);
      memcpy(s->secret[0], next, HENGE_SECRET_BYTES);
      OPENSSL_cleanse(next, sizeof next);
      s->rotated_at = now;
    }
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), s->secret[which], HENGE_SECRET_BYTES, (const unsigned char *)st->peer, st->peer_len, mac, &mac_len) == NULL) return 0;
  if (mac_len < HENGE_COOKIE_BYTES) return 0;
  memcpy(out, mac, HENGE_COOKIE_BYTES);
  *out_len = HENGE_COOKIE_BYTES;
  return 1;
}

static int henge_cookie_generate_cb(SSL *ssl, unsigned char *cookie, unsigned int *cookie_len) {
  return henge_cookie_for(ssl, 0, cookie, cookie_len);
}

static int henge_cookie_verify_cb(SSL *ssl, const unsigned char *cookie, unsigned int cookie_len) {
  for (int which = 0; which < 2; which++) {
    unsigned char expected[HENGE_COOKIE_BYTES];
    unsigned int expected_len = 0;
    if (henge_cookie_for(ssl, which, expected, &expected_len) && cookie_len == expected_len && CRYPTO_memcmp(cookie, expected, expected_len) == 0) return 1;
  }
  return 0;
}

static unsigned int henge_psk_client_cb(SSL *ssl, const char *hint, char *identity, unsigned int max_identity_len, unsigned char *psk,
                                        unsigned int max_psk_len) {
  (void)hint;
  henge_client_psk *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0);
  if (c == NULL) return 0;
  size_t id_len = strlen(c->identity);
  if (id_len + 1 > max_identity_len || c->key_len > max_psk_len) return 0;
  memcpy(identity, c->identity, id_len + 1);
  memcpy(psk, c->key, c->key_len);
  return (unsigned int)c->key_len;
}

/* ---------------------------------------------------------------------------------------------- */
/* N-API helpers                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

#define HENGE_CHECK(env, call)                                   \
  do {                                                           \
    if ((call) != napi_ok) {                                     \
      napi_throw_error((env), "HENGE_E_DTLS", "N-API call failed"); \
      return NULL;                                               \
    }                                                            \
  } while (0)

static napi_value henge_throw(napi_env env, const char *message) {
  napi_throw_error(env, "HENGE_E_DTLS", message);
  return NULL;
}

/* The first queued OpenSSL error as text (and the queue emptied), or NULL. */
static const char *henge_ssl_error(char *buf, size_t size) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return NULL;
  ERR_error_string_n(e, buf, size);
  return buf;
}

static napi_value henge_out_array(napi_env env, henge_bio_state *st) {
  napi_value arr;
  if (napi_create_array_with_length(env, st->out_count, &arr) != napi_ok) return NULL;
  for (size_t i = 0; i < st->out_count; i++) {
    napi_value buf;
    if (napi_create_buffer_copy(env, st->out[i].len, st->out[i].data, NULL, &buf) != napi_ok) return NULL;
    if (napi_set_element(env, arr, (uint32_t)i, buf) != napi_ok) return NULL;
  }
  henge_out_clear(st);
  return arr;
}

static int henge_set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  return napi_create_double(env, value, &v) == napi_ok && napi_set_named_property(env, obj, key, v) == napi_ok;
}

static int henge_set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  if (value == NULL) {
    if (napi_get_null(env, &v) != napi_ok) return 0;
  } else if (napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) != napi_ok) {
    return 0;
  }
  return napi_set_named_property(env, obj, key, v) == napi_ok;
}

static long henge_timeout_ms(SSL *ssl) {
  struct timeval tv;
  if (!DTLSv1_get_timeout(ssl, &tv)) return -1;
  return (long)tv.tv_sec * 1000 + (long)(tv.tv_usec / 1000);
}

/* { out, data, state, timeoutMs, identity, error } for a session after an operation. */
static napi_value henge_result(napi_env env, henge_session *se, napi_value data, const char *error) {
  napi_value obj, out;
  HENGE_CHECK(env, napi_create_object(env, &obj));
  henge_bio_state *st = se->ssl != NULL ? henge_state_of(se->ssl) : NULL;
  if (st != NULL) {
    out = henge_out_array(env, st);
    if (out == NULL) return henge_throw(env, "cannot return datagrams");
  } else {
    HENGE_CHECK(env, napi_create_array(env, &out));
  }
  HENGE_CHECK(env, napi_set_named_property(env, obj, "out", out));
  if (data == NULL) HENGE_CHECK(env, napi_create_array(env, &data));
  HENGE_CHECK(env, napi_set_named_property(env, obj, "data", data));
  if (!henge_set_number(env, obj, "state", se->state)) return henge_throw(env, "cannot build a result");
  long timeout = se->ssl != NULL && se->state == HENGE_HANDSHAKING ? henge_timeout_ms(se->ssl) : -1;
  if (!henge_set_number(env, obj, "timeoutMs", (double)timeout)) return henge_throw(env, "cannot build a result");
  const char *identity = se->ssl != NULL && se->state == HENGE_OPEN ? SSL_get_psk_identity(se->ssl) : NULL;
  if (!henge_set_string(env, obj, "identity", identity)) return henge_throw(env, "cannot build a result");
  if (!henge_set_string(env, obj, "error", error)) return henge_throw(env, "cannot build a result");
  return obj;
}

static void henge_session_free_ssl(henge_session *se) {
  if (se->ssl != NULL) {
    SSL_free(se->ssl);
    se->ssl = NULL;
  }
}

static void henge_session_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  henge_session *se = data;
  if (se == NULL) return;
  henge_session_free_ssl(se);
  if (se->server_ref != NULL) napi_delete_reference(env, se->server_ref);
  if (se->client_ctx != NULL) {
    henge_client_psk *psk = SSL_CTX_get_ex_data(se->client_ctx, 0);
    if (psk != NULL) {
      OPENSSL_cleanse(psk, sizeof *psk);
      free(psk);
    }
    SSL_CTX_free(se->client_ctx);
  }
  free(se);
}

static void henge_server_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  henge_server *s = data;
  if (s == NULL) return;
  if (s->listener != NULL) SSL_free(s->listener);
  if (s->listen_addr != NULL) BIO_ADDR_free(s->listen_addr);
  if (s->psk_lookup != NULL) napi_delete_reference(env, s->psk_lookup);
  if (s->ctx != NULL) SSL_CTX_free(s->ctx);
  OPENSSL_cleanse(s->secret, sizeof s->secret);
  free(s);
}

static SSL *henge_new_ssl(henge_server *s) {
  SSL *ssl = SSL_new(s->ctx);
  if (ssl == NULL) return NULL;
  BIO *b = BIO_new(henge_bio_method);
  if (b == NULL) {
    SSL_free(ssl);
    return NULL;
  }
  SSL_set_bio(ssl, b, b);
  SSL_set_accept_state(ssl);
  if (!DTLS_set_link_mtu(ssl, s->link_mtu)) {
    SSL_free(ssl);
    return NULL;
  }
  return ssl;
}

static int henge_get_external(napi_env env, napi_value v, void **out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return 0;
  return napi_get_value_external(env, v, out) == napi_ok && *out != NULL;
}

/* The session in argument 0 (and `want` arguments in all, into argv), or NULL with a JavaScript error thrown. */
static henge_session *henge_session_arg(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *usage) {
  size_t argc = want;
  henge_session *se = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want || !henge_get_external(env, argv[0], (void **)&se)) {
    henge_throw(env, usage);
    return NULL;
  }
  return se;
}

/* Bounded copy of a Buffer argument into the BIO's read slot. */
static int henge_put_datagram(napi_env env, napi_value v, henge_bio_state *st) {
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer) return 0;
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return 0;
  if (len == 0 || len > HENGE_MAX_DATAGRAM) return 0;
  henge_rx_clear(st);
  st->rx = malloc(len);
  if (st->rx == NULL) return 0;
  memcpy(st->rx, data, len);
  st->rx_len = len;
  st->peek = 0;
  return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Exported functions                                                                              */
/* ---------------------------------------------------------------------------------------------- */

/* The options object (argument 0) and its `ciphers` text; 0 with a JavaScript error thrown. */
static int henge_options_arg(napi_env env, napi_callback_info info, napi_value *opts, char *ciphers, size_t size, const char *usage) {
  size_t argc = 1;
  napi_value v;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, opts, NULL, NULL) != napi_ok || argc < 1) {
    henge_throw(env, usage);
    return 0;
  }
  if (napi_get_named_property(env, *opts, "ciphers", &v) != napi_ok || napi_get_value_string_utf8(env, v, ciphers, size, &len) != napi_ok || len == 0 ||
      len >= size - 1) {
    henge_throw(env, "options.ciphers must be an OpenSSL cipher list");
    return 0;
  }
  return 1;
}

/* What server and client contexts share: DTLS 1.2 only, the cipher list, no renegotiation or tickets, the
 * MTU from us, record buffers released while idle. NULL, or what failed. */
static const char *henge_ctx_setup(SSL_CTX *ctx, const char *ciphers, uint64_t options) {
  if (!SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) || !SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION)) return "cannot pin DTLS 1.2";
  /* TLS_PSK_WITH_AES_128_CCM_8 counts as 64-bit strength in OpenSSL 3: it needs security level 0. */
  SSL_CTX_set_security_level(ctx, 0);
  if (!SSL_CTX_set_cipher_list(ctx, ciphers)) return "no usable cipher in options.ciphers";
  SSL_CTX_set_options(ctx, options | SSL_OP_NO_QUERY_MTU | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_read_ahead(ctx, 1);
  /* A session holds its record buffers (~34 KB) only while it reads or writes: thousands sit idle. */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  return NULL;
}

static napi_value henge_create_server(napi_env env, napi_callback_info info) {
  napi_value opts, v;
  char ciphers[HENGE_MAX_CIPHERS];
  if (!henge_options_arg(env, info, &opts, ciphers, sizeof ciphers, "createServer(options) needs its options")) return NULL;
  napi_value lookup;
  napi_valuetype t;
  HENGE_CHECK(env, napi_get_named_property(env, opts, "pskLookup", &lookup));
  if (napi_typeof(env, lookup, &t) != napi_ok || t != napi_function) return henge_throw(env, "options.pskLookup must be a function");
  int32_t mtu = 1280;
  HENGE_CHECK(env, napi_get_named_property(env, opts, "mtu", &v));
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_number) napi_get_value_int32(env, v, &mtu);
  if (mtu < 256 || mtu > 65535) return henge_throw(env, "options.mtu must be 256..65535");
  if (!henge_bio_init_method()) return henge_throw(env, "cannot create the datagram BIO");

  henge_server *s = calloc(1, sizeof *s);
  if (s == NULL) return henge_throw(env, "out of memory");
  s->env = env;
  s->link_mtu = mtu;
  s->ctx = SSL_CTX_new(DTLS_server_method());
  char err[256];
  const char *failure = NULL;
  if (s->ctx == NULL) failure = "SSL_CTX_new failed";
  else failure = henge_ctx_setup(s->ctx, ciphers, SSL_OP_COOKIE_EXCHANGE);
  if (failure == NULL) {
    SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_psk_server_callback(s->ctx, henge_psk_server_cb);
    SSL_CTX_set_cookie_generate_cb(s->ctx, henge_cookie_generate_cb);
    SSL_CTX_set_cookie_verify_cb(s->ctx, henge_cookie_verify_cb);
    if (!SSL_CTX_set_ex_data(s->ctx, 0, s)) failure = "cannot attach the server to its context";
    else if (RAND_bytes(s->secret[0], HENGE_SECRET_BYTES) != 1 || RAND_bytes(s->secret[1], HENGE_SECRET_BYTES) != 1) failure = "no randomness for the cookie secret";
    else if ((s->listen_addr = BIO_ADDR_new()) == NULL) failure = "out of memory";
    else if ((s->listener = henge_new_ssl(s)) == NULL) failure = "cannot create the listening SSL object";
  }
  if (failure == NULL && napi_create_reference(env, lookup, 1, &s->psk_lookup) != napi_ok) failure = "cannot keep pskLookup";
  s->rotated_at = time(NULL);
  if (failure != NULL) {
    const char *detail = henge_ssl_error(err, sizeof err);
    henge_server_finalize(env, s, NULL);
    char message[400];
    snprintf(message, sizeof message, "%s%s%s", failure, detail != NULL ? ": " : "", detail != NULL ? detail : "");
    return henge_throw(env, message);
  }
  napi_value external;
  if (napi_create_external(env, s, henge_server_finalize, NULL, &external) != napi_ok) {
    henge_server_finalize(env, s, NULL);
    return henge_throw(env, "cannot wrap the server");
  }
  return external;
}

static napi_value henge_listen(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  HENGE_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  henge_server *s = NULL;
  if (argc < 3 || !henge_get_external(env, argv[0], (void **)&s)) return henge_throw(env, "listen(server, peerKey, datagram)");
  s->env = env;
  henge_bio_state *st = henge_state_of(s->listener);
  if (st == NULL) return henge_throw(env, "the listener has no BIO");
  size_t peer_len = 0;
  if (napi_get_value_string_utf8(env, argv[1], st->peer, sizeof st->peer, &peer_len) != napi_ok || peer_len == 0 || peer_len >= sizeof st->peer - 1) {
    return henge_throw(env, "peerKey must be a short string");
  }
  st->peer_len = peer_len;
  if (!henge_put_datagram(env, argv[2], st)) return henge_throw(env, "datagram must be a Buffer of 1..16640 bytes");

  ERR_clear_error();
  int r = DTLSv1_listen(s->listener, s->listen_addr);
  napi_value obj, out, session;
  HENGE_CHECK(env, napi_create_object(env, &obj));
  out = henge_out_array(env, st);
  if (out == NULL) return henge_throw(env, "cannot return datagrams");
  HENGE_CHECK(env, napi_set_named_property(env, obj, "out", out));
  if (r != 1) {
    /* No verified cookie: whatever was answered (a HelloVerifyRequest) is all; no state is kept. */
    henge_rx_clear(st);
    ERR_clear_error();
    SSL_clear(s->listener);
    HENGE_CHECK(env, napi_get_null(env, &session));
    HENGE_CHECK(env, napi_set_named_property(env, obj, "session", session));
    return obj;
  }
  /* A ClientHello with our cookie: this SSL object becomes the peer's session, and the handshake goes on
   * from the ClientHello DTLSv1_listen kept. */
  henge_session *se = calloc(1, sizeof *se);
  SSL *next = henge_new_ssl(s);
  if (se == NULL || next == NULL) {
    free(se);
    if (next != NULL) SSL_free(next);
    henge_rx_clear(st);
    SSL_clear(s->listener);
    return henge_throw(env, "out of memory");
  }
  se->ssl = s->listener;
  se->server = s;
  se->state = HENGE_HANDSHAKING;
  s->listener = next;
  if (napi_create_reference(env, argv[0], 1, &se->server_ref) != napi_ok) {
    henge_session_finalize(env, se, NULL);
    return henge_throw(env, "cannot keep the server");
  }
  int h = SSL_do_handshake(se->ssl);
  char err[256];
  const char *error = NULL;
  if (h <= 0) {
    int e = SSL_get_error(se->ssl, h);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      error = henge_ssl_error(err, sizeof err);
      se->state = HENGE_CLOSED;
    }
  }
  henge_bio_state *sst = henge_state_of(se->ssl);
  if (sst != NULL) henge_rx_clear(sst);
  HENGE_CHECK(env, napi_create_external(env, se, henge_session_finalize, NULL, &session));
  napi_value result = henge_result(env, se, NULL, error);
  if (result == NULL) return NULL;
  /* The first flight goes in `out` of the result; merge: the listener's out was empty on success. */
  HENGE_CHECK(env, napi_set_named_property(env, result, "session", session));
  return result;
}

static napi_value henge_feed(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  henge_session *se = henge_session_arg(env, info, 2, argv, "feed(session, datagram)");
  if (se == NULL) return NULL;
  if (se->ssl == NULL || se->state == HENGE_CLOSED) return henge_result(env, se, NULL, "the session is closed");
  if (se->server != NULL) se->server->env = env;
  henge_bio_state *st = henge_state_of(se->ssl);
  if (st == NULL || !henge_put_datagram(env, argv[1], st)) return henge_throw(env, "datagram must be a Buffer of 1..16640 bytes");
  ERR_clear_error();
  char err[256];
  const char *error = NULL;
  if (se->state == HENGE_HANDSHAKING) {
    int h = SSL_do_handshake(se->ssl);
    if (h == 1) {
      se->state = HENGE_OPEN;
    } else {
      int e = SSL_get_error(se->ssl, h);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        error = henge_ssl_error(err, sizeof err);
        if (error == NULL) error = "handshake failed";
        se->state = HENGE_CLOSED;
      }
    }
  }
  static unsigned char plain[HENGE_MAX_DATAGRAM];
  if (se->state == HENGE_OPEN && error == NULL) {
    /* The hot path (a datagram holding one record): its plaintext as a Buffer, no result object. */
    int n = SSL_read(se->ssl, plain, (int)sizeof plain);
    henge_bio_state *fst = henge_state_of(se->ssl);
    if (n > 0 && fst != NULL && fst->rx == NULL && fst->out_count == 0 && !SSL_has_pending(se->ssl)) {
      napi_value buf;
      HENGE_CHECK(env, napi_create_buffer_copy(env, (size_t)n, plain, NULL, &buf));
      return buf;
    }
    napi_value data;
    HENGE_CHECK(env, napi_create_array(env, &data));
    uint32_t count = 0;
    for (int i = 0; i < HENGE_MAX_OUT; i++) {
      if (i > 0) n = SSL_read(se->ssl, plain, (int)sizeof plain);
      if (n > 0) {
        napi_value buf;
        HENGE_CHECK(env, napi_create_buffer_copy(env, (size_t)n, plain, NULL, &buf));
        HENGE_CHECK(env, napi_set_element(env, data, count++, buf));
        continue;
      }
      int e = SSL_get_error(se->ssl, n);
      if (e == SSL_ERROR_ZERO_RETURN) {
        se->state = HENGE_CLOSED; /* close_notify from the peer */
      } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        error = henge_ssl_error(err, sizeof err);
        if (error == NULL) error = "record layer failure";
        se->state = HENGE_CLOSED;
      }
      break;
    }
    henge_rx_clear(st);
    return henge_result(env, se, data, error);
  }
  /* Still handshaking, or closed: no application data. */
  henge_rx_clear(st);
  return henge_result(env, se, NULL, error);
}

static napi_value henge_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  henge_session *se = henge_session_arg(env, info, 2, argv, "write(session, plaintext)");
  if (se == NULL) return NULL;
  if (se->ssl == NULL || se->state != HENGE_OPEN) return henge_result(env, se, NULL, "the session is not open");
  bool is_buffer = false;
  void *data = NULL;
  size_t len = 0;
  if (napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || len == 0 ||
      len > HENGE_MAX_DATAGRAM) {
    return henge_throw(env, "plaintext must be a Buffer of 1..16640 bytes");
  }
  ERR_clear_error();
  char err[256];
  const char *error = NULL;
  int n = SSL_write(se->ssl, data, (int)len);
  if (n <= 0) {
    error = henge_ssl_error(err, sizeof err);
    if (error == NULL) error = "write failed";
  }
  henge_bio_state *st = henge_state_of(se->ssl);
  if (error == NULL && st != NULL && st->out_count == 1) {
    /* The hot path (every notification): the one record, as a Buffer, no result object. */
    napi_value buf;
    HENGE_CHECK(env, napi_create_buffer_copy(env, st->out[0].len, st->out[0].data, NULL, &buf));
    henge_out_clear(st);
    return buf;
  }
  return henge_result(env, se, NULL, error);
}

static napi_value henge_timeout(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  henge_session *se = henge_session_arg(env, info, 1, argv, "timeout(session)");
  if (se == NULL) return NULL;
  if (se->ssl == NULL || se->state != HENGE_HANDSHAKING) return henge_result(env, se, NULL, NULL);
  if (se->server != NULL) se->server->env = env;
  ERR_clear_error();
  char err[256];
  const char *error = NULL;
  if (DTLSv1_handle_timeout(se->ssl) < 0) {
    error = henge_ssl_error(err, sizeof err);
    if (error == NULL) error = "handshake timed out";
    se->state = HENGE_CLOSED;
  }
  return henge_result(env, se, NULL, error);
}

static napi_value henge_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  henge_session *se = henge_session_arg(env, info, 1, argv, "close(session)");
  if (se == NULL) return NULL;
  napi_value out;
  if (se->ssl != NULL && se->state == HENGE_OPEN) {
    ERR_clear_error();
    SSL_shutdown(se->ssl); /* queues close_notify */
    ERR_clear_error();
    out = henge_out_array(env, henge_state_of(se->ssl));
    if (out == NULL) return henge_throw(env, "cannot return datagrams");
  } else {
    HENGE_CHECK(env, napi_create_array(env, &out));
  }
  se->state = HENGE_CLOSED;
  henge_session_free_ssl(se);
  return out;
}

static napi_value henge_create_client(napi_env env, napi_callback_info info) {
  napi_value opts, v;
  napi_valuetype t;
  char ciphers[HENGE_MAX_CIPHERS];
  if (!henge_options_arg(env, info, &opts, ciphers, sizeof ciphers, "createClient(options) needs its options")) return NULL;
  henge_client_psk *psk = calloc(1, sizeof *psk);
  if (psk == NULL) return henge_throw(env, "out of memory");
  size_t id_len = 0;
  bool is_buffer = false;
  void *key = NULL;
  size_t key_len = 0;
  const char *bad = NULL;
  if (napi_get_named_property(env, opts, "identity", &v) != napi_ok ||
      napi_get_value_string_utf8(env, v, psk->identity, sizeof psk->identity, &id_len) != napi_ok || id_len == 0 || id_len >= PSK_MAX_IDENTITY_LEN) {
    bad = "options.identity must be 1..127 characters";
  } else if (napi_get_named_property(env, opts, "key", &v) != napi_ok || napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer ||
             napi_get_buffer_info(env, v, &key, &key_len) != napi_ok || key_len == 0 || key_len > PSK_MAX_PSK_LEN) {
    bad = "options.key must be a Buffer of 1..512 bytes";
  }
  int32_t mtu = 1280;
  if (bad == NULL && napi_get_named_property(env, opts, "mtu", &v) == napi_ok && napi_typeof(env, v, &t) == napi_ok && t == napi_number) napi_get_value_int32(env, v, &mtu);
  if (bad == NULL && (mtu < 256 || mtu > 65535)) bad = "options.mtu must be 256..65535";
  if (bad == NULL && !henge_bio_init_method()) bad = "cannot create the datagram BIO";
  if (bad != NULL) {
    free(psk);
    return henge_throw(env, bad);
  }
  memcpy(psk->key, key, key_len);
  psk->key_len = key_len;

  henge_session *se = calloc(1, sizeof *se);
  if (se == NULL) {
    OPENSSL_cleanse(psk, sizeof *psk);
    free(psk);
    return henge_throw(env, "out of memory");
  }
  se->state = HENGE_HANDSHAKING;
  char err[256];
  const char *failure = NULL;
  SSL_CTX *ctx = SSL_CTX_new(DTLS_client_method());
  se->client_ctx = ctx;
  if (ctx == NULL) failure = "SSL_CTX_new failed";
  else if (!SSL_CTX_set_ex_data(ctx, 0, psk)) failure = "cannot attach the key";
  else {
    psk = NULL; /* owned by the context now, freed with the session */
    failure = henge_ctx_setup(ctx, ciphers, 0);
  }
  if (failure == NULL) {
    SSL_CTX_set_psk_client_callback(ctx, henge_psk_client_cb);
    se->ssl = SSL_new(ctx);
    BIO *b = se->ssl != NULL ? BIO_new(henge_bio_method) : NULL;
    if (b == NULL) failure = "cannot create the SSL object";
    else {
      SSL_set_bio(se->ssl, b, b);
      SSL_set_connect_state(se->ssl);
      if (!DTLS_set_link_mtu(se->ssl, mtu)) failure = "cannot set the link MTU";
    }
  }
  if (failure != NULL) {
    const char *detail = henge_ssl_error(err, sizeof err);
    if (psk != NULL) {
      OPENSSL_cleanse(psk, sizeof *psk);
      free(psk);
    }
    henge_session_finalize(env, se, NULL);
    char message[400];
    snprintf(message, sizeof message, "%s%s%s", failure, detail != NULL ? ": " : "", detail != NULL ? detail : "");
    return henge_throw(env, message);
  }
  ERR_clear_error();
  int h = SSL_do_handshake(se->ssl); /* the ClientHello */
  const char *error = NULL;
  if (h <= 0) {
    int e = SSL_get_error(se->ssl, h);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      error = henge_ssl_error(err, sizeof err);
      if (error == NULL) error = "handshake failed";
      se->state = HENGE_CLOSED;
    }
  }
  napi_value session;
  if (napi_create_external(env, se, henge_session_finalize, NULL, &session) != napi_ok) {
    henge_session_finalize(env, se, NULL);
    return henge_throw(env, "cannot wrap the session");
  }
  napi_value result = henge_result(env, se, NULL, error);
  if (result == NULL) return NULL;
  HENGE_CHECK(env, napi_set_named_property(env, result, "session", session));
  return result;
}

static napi_value henge_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"createServer", NULL, henge_create_server, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, henge_listen, NULL, NULL, NULL, napi_default, NULL},
      {"feed", NULL, henge_feed, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, henge_write, NULL, NULL, NULL, napi_default, NULL},
      {"timeout", NULL, henge_timeout, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, henge_close, NULL, NULL, NULL, napi_default, NULL},
      {"createClient", NULL, henge_create_client, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  napi_value version;
  if (napi_create_string_utf8(env, OpenSSL_version(OPENSSL_VERSION), NAPI_AUTO_LENGTH, &version) == napi_ok) {
    napi_set_named_property(env, exports, "openssl", version);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, henge_init)
