/* mp_mutex.h -- a plain mutex on either platform (compat shim). */
#ifndef MP_MUTEX_H
#define MP_MUTEX_H

#ifdef _WIN32
#  include <windows.h>
typedef SRWLOCK mp_mutex_t;
#  define mp_mutex_init(m) InitializeSRWLock(m)
#  define mp_mutex_destroy(m) ((void)(m))
#  define mp_mutex_lock(m) AcquireSRWLockExclusive(m)
#  define mp_mutex_unlock(m) ReleaseSRWLockExclusive(m)
#else
#  include <pthread.h>
typedef pthread_mutex_t mp_mutex_t;
#  define mp_mutex_init(m) pthread_mutex_init((m), NULL)
#  define mp_mutex_destroy(m) pthread_mutex_destroy(m)
#  define mp_mutex_lock(m) pthread_mutex_lock(m)
#  define mp_mutex_unlock(m) pthread_mutex_unlock(m)
#endif

#endif /* MP_MUTEX_H */
