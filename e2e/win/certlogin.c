/* The tests' 電子証明書方式 login through Windows' own TLS (WinHTTP over
 * schannel), as Edge does on a bank's PC: the certificate whose friendly
 * name starts with argv[3] is taken from CurrentUser\My and presented to the
 * certificate listener at https://127.0.0.1:<argv[1]>; then the login form
 * is sent with the password argv[2]. Prints, one per line:
 *   get <status>\t<body of GET /cert-login, one line>
 *   post <status>\t<Location>
 *   top <status>\t<body of the page that Location names, one line>
 * or "error <call> <GetLastError()>" and exits 1. The server's certificate
 * is not checked (the bank's root is not in the prefix's Root store): this
 * looks at the client side only. */
#include <windows.h>
#include <wincrypt.h>
#include <winhttp.h>
#include <stdio.h>
#include <string.h>

static HINTERNET connection;
static PCCERT_CONTEXT client;

static int fail(const char *call)
{
    printf("error %s %lu\n", call, GetLastError());
    return 1;
}

/* One request on the connection; the body, NUL-terminated, in *body. */
static int request(const WCHAR *verb, const WCHAR *path, const char *form, DWORD *status, char **body,
                   WCHAR *location)
{
    HINTERNET r = WinHttpOpenRequest(connection, verb, path, NULL, WINHTTP_NO_REFERER,
                                     WINHTTP_DEFAULT_ACCEPT_TYPES, WINHTTP_FLAG_SECURE);
    if (!r) return fail("WinHttpOpenRequest");
    DWORD no_redirects = WINHTTP_DISABLE_REDIRECTS;
    if (!WinHttpSetOption(r, WINHTTP_OPTION_DISABLE_FEATURE, &no_redirects, sizeof(no_redirects)))
        return fail("WinHttpSetOption(DISABLE_FEATURE)");
    DWORD flags = SECURITY_FLAG_IGNORE_UNKNOWN_CA | SECURITY_FLAG_IGNORE_CERT_CN_INVALID
        | SECURITY_FLAG_IGNORE_CERT_DATE_INVALID | SECURITY_FLAG_IGNORE_CERT_WRONG_USAGE;
    if (!WinHttpSetOption(r, WINHTTP_OPTION_SECURITY_FLAGS, &flags, sizeof(flags)))
        return fail("WinHttpSetOption(SECURITY_FLAGS)");
    if (!WinHttpSetOption(r, WINHTTP_OPTION_CLIENT_CERT_CONTEXT, (void *)client, sizeof(CERT_CONTEXT)))
        return fail("WinHttpSetOption(CLIENT_CERT_CONTEXT)");
    const WCHAR *headers = form ? L"Content-Type: application/x-www-form-urlencoded\r\n" : WINHTTP_NO_ADDITIONAL_HEADERS;
    DWORD len = form ? (DWORD)strlen(form) : 0;
    if (!WinHttpSendRequest(r, headers, (DWORD)-1L, (void *)form, len, len, 0)) return fail("WinHttpSendRequest");
    if (!WinHttpReceiveResponse(r, NULL)) return fail("WinHttpReceiveResponse");
    DWORD sl = sizeof(*status);
    if (!WinHttpQueryHeaders(r, WINHTTP_QUERY_STATUS_CODE | WINHTTP_QUERY_FLAG_NUMBER, WINHTTP_HEADER_NAME_BY_INDEX,
                             status, &sl, WINHTTP_NO_HEADER_INDEX))
        return fail("WinHttpQueryHeaders");
    DWORD ll = 512 * sizeof(WCHAR);
    location[0] = 0;
    if (!WinHttpQueryHeaders(r, WINHTTP_QUERY_LOCATION, WINHTTP_HEADER_NAME_BY_INDEX, location, &ll,
                             WINHTTP_NO_HEADER_INDEX))
        location[0] = 0;
    size_t used = 0, cap = 1 << 16;
    char *b = malloc(cap);
    for (;;) {
        DWORD got = 0;
        if (used + 4096 + 1 > cap) b = realloc(b, cap *= 2);
        if (!WinHttpReadData(r, b + used, 4096, &got)) return fail("WinHttpReadData");
        if (!got) break;
        used += got;
    }
    b[used] = 0;
    for (char *p = b; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    *body = b;
    WinHttpCloseHandle(r);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) { printf("usage: certlogin <port> <password> <friendly name prefix>\n"); return 2; }
    HCERTSTORE my = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_CURRENT_USER, L"My");
    if (!my) return fail("CertOpenStore");
    WCHAR want[256];
    MultiByteToWideChar(CP_UTF8, 0, argv[3], -1, want, 256);
    while ((client = CertEnumCertificatesInStore(my, client))) {
        WCHAR name[512] = L"";
        DWORD nn = sizeof(name);
        if (CertGetCertificateContextProperty(client, CERT_FRIENDLY_NAME_PROP_ID, name, &nn)
            && !wcsncmp(name, want, wcslen(want)))
            break;
    }
    if (!client) { printf("error no certificate named %s\n", argv[3]); return 1; }

    HINTERNET session = WinHttpOpen(L"shomei-certlogin", WINHTTP_ACCESS_TYPE_NO_PROXY, WINHTTP_NO_PROXY_NAME,
                                    WINHTTP_NO_PROXY_BYPASS, 0);
    if (!session) return fail("WinHttpOpen");
    connection = WinHttpConnect(session, L"127.0.0.1", (INTERNET_PORT)atoi(argv[1]), 0);
    if (!connection) return fail("WinHttpConnect");

    DWORD status = 0;
    char *page = NULL;
    WCHAR location[512];
    if (request(L"GET", L"/cert-login", NULL, &status, &page, location)) return 1;
    printf("get %lu\t%s\n", status, page);
    /* The form's token, then the password (letters, digits and #: the
     * test's, percent-encoded where a form needs it). */
    const char *at = strstr(page, "name=\"csrf\" value=\"");
    if (!at) { printf("error no csrf field\n"); return 1; }
    at += strlen("name=\"csrf\" value=\"");
    const char *end = strchr(at, '"');
    char form[2048];
    int n = snprintf(form, sizeof(form), "csrf=%.*s&password=", (int)(end - at), at);
    for (const char *p = argv[2]; *p && n < (int)sizeof(form) - 4; p++)
        n += (*p == '#' || *p == '&' || *p == '+' || *p == '%' || *p == '=')
            ? snprintf(form + n, sizeof(form) - n, "%%%02X", (unsigned char)*p)
            : snprintf(form + n, sizeof(form) - n, "%c", *p);
    free(page);
    if (request(L"POST", L"/cert-login", form, &status, &page, location)) return 1;
    printf("post %lu\t%ls\n", status, location);
    free(page);
    if (!location[0]) return 0;
    /* The session cookie the login set rides along (WinHTTP's own jar). */
    if (request(L"GET", location, NULL, &status, &page, location)) return 1;
    printf("top %lu\t%s\n", status, page);
    return 0;
}
