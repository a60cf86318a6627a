/* SPDX-License-Identifier: Apache-2.0 */
/* The ECS container credentials provider: a GET of the agent's credentials URL
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI under 169.254.170.2, or
 * AWS_CONTAINER_CREDENTIALS_FULL_URI) with the Authorization header from
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read again on every load: it rotates) or
 * AWS_CONTAINER_AUTHORIZATION_TOKEN. Neither URL variable set is "nothing here"; once
 * one is set, every failure is an error. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "http/client.h"

#define ECS_AGENT_BASE "http://169.254.170.2" /* the ECS agent's fixed address */

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Printable ASCII without blanks' dangerous cousins: it becomes part of a request. */
static bool ecs_printable(const char *s, bool spaces)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < (spaces ? 0x20 : 0x21) || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* Plain http may only reach this host itself or the container agents (the ECS agent,
 * the EKS pod identity agent), as the AWS SDKs rule: anything else must be https. */
static bool ecs_http_host_allowed(const char *host)
{
    static const char *const agents[] = {"localhost", "169.254.170.2", "169.254.170.23",
                                         "[fd00:ec2::23]", "[::1]"};
    for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++)
        if (strcasecmp(host, agents[i]) == 0)
            return true;
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int credentials_ecs_url(char *out, size_t cap, char err[XRAY_ERR_LEN])
{
    const char *rel = env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    if (rel != NULL) {
        if (rel[0] != '/' || !ecs_printable(rel, false)) {
            snprintf(err, XRAY_ERR_LEN, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a path");
            return XRAY_ECONFIG;
        }
        if ((size_t)snprintf(out, cap, "%s%s", ECS_AGENT_BASE, rel) >= cap) {
            snprintf(err, XRAY_ERR_LEN, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is too long");
            return XRAY_ECONFIG;
        }
        return 0;
    }
    const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (full == NULL) {
        snprintf(err, XRAY_ERR_LEN, "no AWS_CONTAINER_CREDENTIALS_*_URI");
        return XRAY_ENOCREDS;
    }
    struct endpoint_url u;
    if (!ecs_printable(full, false) || endpoint_split(full, &u) != 0) {
        snprintf(err, XRAY_ERR_LEN, "AWS_CONTAINER_CREDENTIALS_FULL_URI is not an http(s) URL");
        return XRAY_ECONFIG;
    }
    if (strcmp(u.scheme, "http") == 0 && !ecs_http_host_allowed(u.host)) {
        snprintf(err, XRAY_ERR_LEN,
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http only to a loopback address or "
                 "the container agent; use https");
        return XRAY_ECONFIG;
    }
    if ((size_t)snprintf(out, cap, "%s", full) >= cap) {
        snprintf(err, XRAY_ERR_LEN, "AWS_CONTAINER_CREDENTIALS_FULL_URI is too long");
        return XRAY_ECONFIG;
    }
    return 0;
}

struct ecs_load {
    void (*done)(void *data, int rc, const struct aws_credentials *creds, const char *err);
    void *data;
};

static void ecs_on_response(const struct http_client_result *res, void *data)
{
    struct ecs_load *l = data;
    char err[XRAY_ERR_LEN] = "";
    struct aws_credentials creds = {0};
    int rc = credentials_http_rc(res);
    if (rc != 0) {
        snprintf(err, sizeof(err), "credentials endpoint: %s: %s",
                 http_client_error_name(res->error), res->message);
    } else if (res->status != 200) {
        snprintf(err, sizeof(err), "credentials endpoint answered HTTP %d", res->status);
        rc = XRAY_EUPSTREAM;
    } else {
        char perr[XRAY_ERR_LEN] = "";
        rc = credentials_from_json(res->body, res->body_len, &creds, perr);
        if (rc != 0)
            snprintf(err, sizeof(err), "credentials endpoint sent %s", perr);
    }
    l->done(l->data, rc, rc == 0 ? &creds : NULL, err);
    aws_credentials_clear(&creds);
    free(l);
}

/* The Authorization header line (owned; wipe it), or NULL without a token. */
static int ecs_auth_header(char **line, char err[XRAY_ERR_LEN])
{
    *line = NULL;
    const char *file = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    char *from_file = NULL;
    const char *token = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (file != NULL) {
        char ferr[XRAY_ERR_LEN] = "";
        int rc = credentials_read_file(file, CREDENTIALS_FILE_MAX, &from_file, ferr);
        if (rc != 0) {
            snprintf(err, XRAY_ERR_LEN, "authorization token file %s", ferr);
            return rc;
        }
        token = from_file;
    }
    int rc = 0;
    if (token != NULL && !ecs_printable(token, true)) {
        snprintf(err, XRAY_ERR_LEN, "the authorization token holds control characters");
        rc = XRAY_ECONFIG;
    } else if (token != NULL) {
        size_t n = strlen(token) + sizeof("Authorization: ");
        if ((*line = malloc(n)) == NULL)
            rc = -ENOMEM;
        else
            snprintf(*line, n, "Authorization: %s", token);
    }
    credentials_free_secret(from_file);
    return rc;
}

static void credentials_ecs_load(const struct credentials_provider *self,
                                 const struct credentials_context *ctx, uint64_t now_ms,
                                 void (*done)(void *data, int rc,
                                              const struct aws_credentials *creds, const char *err),
                                 void *data)
{
    (void)self, (void)now_ms;
    char url[ENDPOINT_URL_MAX];
    char err[XRAY_ERR_LEN] = "";
    int rc = credentials_ecs_url(url, sizeof(url), err);
    if (rc != 0) {
        done(data, rc, NULL, err);
        return;
    }
    if (ctx->http == NULL) {
        done(data, XRAY_ECONFIG, NULL, "no HTTP client to reach the credentials endpoint");
        return;
    }
    char *auth = NULL;
    if ((rc = ecs_auth_header(&auth, err)) != 0) {
        done(data, rc, NULL, err);
        return;
    }
    struct ecs_load *l = malloc(sizeof(*l));
    if (l == NULL) {
        credentials_free_secret(auth);
        done(data, -ENOMEM, NULL, "out of memory");
        return;
    }
    *l = (struct ecs_load){done, data};
    const char *headers[] = {"Accept: application/json", auth};
    const struct http_client_request req = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .header_count = auth != NULL ? 2 : 1,
        .timeout_ms = CREDENTIALS_METADATA_TIMEOUT_MS,
        .max_response = CREDENTIALS_RESPONSE_MAX,
        .direct = true, /* metadata is local to the host: never through a proxy */
    };
    rc = http_client_request(ctx->http, &req, ecs_on_response, l);
    credentials_free_secret(auth); /* the client keeps its own copy of the headers */
    if (rc != 0) {
        free(l);
        snprintf(err, sizeof(err), "credentials endpoint: not sent: %s", xray_strerror(rc));
        done(data, rc, NULL, err);
    }
}

const struct credentials_provider credentials_ecs_provider = {
    .name = "ecs",
    .load = credentials_ecs_load,
};
