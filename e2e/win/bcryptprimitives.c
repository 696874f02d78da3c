/* For the tests only, never shipped: wine 8 has no bcryptprimitives.dll,
 * whose ProcessPrng Rust's standard library imports on Windows (Windows 10
 * and 11 have it). This one forwards to BCryptGenRandom, which wine has. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
