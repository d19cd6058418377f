/*
 * mbedtls_config.h: mbedTLS 3.6 (pico-sdk 2.x's lib/mbedtls) for libcoap's DTLS on the Pico W.
 *
 * The hub speaks DTLS 1.2 with a pre-shared key: TLS_PSK_WITH_AES_128_CCM_8 (RFC 7252's MUST) and
 * TLS_PSK_WITH_AES_128_GCM_SHA256 (docs/protocol.md, "Security"). libcoap's coap_mbedtls.c also
 * names certificate, key and cookie types whatever the mode, so X.509 and PK parsing are compiled in
 * (the linker drops what PSK never calls). Randomness: the RP2040's ROSC through pico_mbedtls
 * (mbedtls_hardware_poll); time: mbedtls_ms_time() in main.c.
 */
#ifndef HENGE_MBEDTLS_CONFIG_H
#define HENGE_MBEDTLS_CONFIG_H

/* platform */
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_PLATFORM_MS_TIME_ALT
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_ENTROPY_HARDWARE_ALT
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C
#define MBEDTLS_TIMING_C
#define MBEDTLS_ERROR_C
#define MBEDTLS_VERSION_C

/* the cipher suites */
#define MBEDTLS_AES_C
#define MBEDTLS_AES_FEWER_TABLES
#define MBEDTLS_CCM_C
#define MBEDTLS_GCM_C
#define MBEDTLS_CIPHER_C
#define MBEDTLS_MD_C
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_KEY_EXCHANGE_PSK_ENABLED

/* DTLS 1.2, client */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_DTLS
#define MBEDTLS_SSL_DTLS_HELLO_VERIFY
#define MBEDTLS_SSL_DTLS_ANTI_REPLAY
#define MBEDTLS_SSL_COOKIE_C
#define MBEDTLS_SSL_MAX_FRAGMENT_LENGTH
/* Records: a 1,024-byte block plus CoAP options fits 2 KB. */
#define MBEDTLS_SSL_IN_CONTENT_LEN 2048
#define MBEDTLS_SSL_OUT_CONTENT_LEN 2048

/* what coap_mbedtls.c names besides PSK */
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECDH_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C

#endif /* HENGE_MBEDTLS_CONFIG_H */
