/* The tests' look into CurrentUser\My, as another program on the PC sees
 * it: for each certificate with a key, one line
 *   cert <friendly name>\t<certificate, hex>\t<export>\t<sign>
 * where <export> is "exportable" or "not-exportable" (the key's
 * KP_PERMISSIONS) and whether CryptExportKey(PRIVATEKEYBLOB) refused, and
 * <sign> is "signs" when a SHA-256 signature made with the key verifies
 * with the certificate's public key. */
#include <windows.h>
#include <wincrypt.h>
#include <stdio.h>

static void hex(const BYTE *b, DWORD n)
{
    for (DWORD i = 0; i < n; i++) printf("%02x", b[i]);
}

int main(void)
{
    HCERTSTORE my = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_CURRENT_USER, L"My");
    if (!my) { printf("error CertOpenStore 0x%08lx\n", GetLastError()); return 1; }
    PCCERT_CONTEXT c = NULL;
    while ((c = CertEnumCertificatesInStore(my, c))) {
        DWORD n = 0;
        if (!CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, NULL, &n)) continue;
        WCHAR name[512] = L"";
        DWORD nn = sizeof(name);
        CertGetCertificateContextProperty(c, CERT_FRIENDLY_NAME_PROP_ID, name, &nn);
        char utf8[1024];
        WideCharToMultiByte(CP_UTF8, 0, name, -1, utf8, sizeof(utf8), NULL, NULL);
        printf("cert %s\t", utf8);
        hex(c->pbCertEncoded, c->cbCertEncoded);

        HCRYPTPROV_OR_NCRYPT_KEY_HANDLE prov = 0;
        DWORD spec = 0;
        BOOL free_it = FALSE;
        if (!CryptAcquireCertificatePrivateKey(c, CRYPT_ACQUIRE_SILENT_FLAG, NULL, &prov, &spec, &free_it)) {
            printf("\tno-key 0x%08lx\tno-sign\n", GetLastError());
            continue;
        }
        HCRYPTKEY key = 0;
        DWORD perms = 0, pn = sizeof(perms);
        if (!CryptGetUserKey(prov, spec, &key) || !CryptGetKeyParam(key, KP_PERMISSIONS, (BYTE *)&perms, &pn, 0)) {
            printf("\tno-key-params 0x%08lx", GetLastError());
        } else {
            DWORD bl = 0;
            BOOL exported = CryptExportKey(key, 0, PRIVATEKEYBLOB, 0, NULL, &bl);
            printf("\t%s,export-%s", (perms & CRYPT_EXPORT) ? "exportable" : "not-exportable",
                   exported ? "allowed" : "refused");
        }
        HCRYPTHASH h = 0;
        BYTE sig[1024];
        DWORD sl = sizeof(sig);
        static const BYTE msg[] = "shomei storecheck";
        BOOL signed_ok = CryptCreateHash(prov, CALG_SHA_256, 0, 0, &h)
            && CryptHashData(h, msg, sizeof(msg), 0)
            && CryptSignHashW(h, spec, NULL, 0, sig, &sl);
        DWORD sign_err = signed_ok ? 0 : GetLastError();
        if (h) CryptDestroyHash(h);
        BOOL verified = FALSE;
        if (signed_ok) {
            HCRYPTPROV v = 0;
            HCRYPTKEY pub = 0;
            HCRYPTHASH vh = 0;
            verified = CryptAcquireContextW(&v, NULL, MS_ENH_RSA_AES_PROV_W, PROV_RSA_AES, CRYPT_VERIFYCONTEXT)
                && CryptImportPublicKeyInfo(v, X509_ASN_ENCODING, &c->pCertInfo->SubjectPublicKeyInfo, &pub)
                && CryptCreateHash(v, CALG_SHA_256, 0, 0, &vh)
                && CryptHashData(vh, msg, sizeof(msg), 0)
                && CryptVerifySignatureW(vh, sig, sl, pub, NULL, 0);
        }
        if (signed_ok && verified) printf("\tsigns\n");
        else if (signed_ok) printf("\tsignature-does-not-verify\n");
        else printf("\tno-sign 0x%08lx\n", sign_err);
        if (key) CryptDestroyKey(key);
        if (free_it) CryptReleaseContext(prov, 0);
    }
    CertCloseStore(my, 0);
    return 0;
}
