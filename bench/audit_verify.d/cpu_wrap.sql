-- Runs the statements of the file named by psql variable stmt and writes to
-- the file named by cpu_file the CPU time its backend used before and after
-- (utime + stime from /proc, clock ticks) and the backend's peak RSS (kB).
-- The runner runs as root on the same host as the server.
\set ON_ERROR_STOP on
SELECT pg_backend_pid() AS bpid \gset
\setenv BPID :bpid
\setenv CPU_FILE :cpu_file
\! awk '{ print $14 + $15 }' /proc/$BPID/stat > "$CPU_FILE"
\i :stmt
\! awk '{ print $14 + $15 }' /proc/$BPID/stat >> "$CPU_FILE"
\! grep VmHWM /proc/$BPID/status | awk '{ print $2 }' >> "$CPU_FILE"
