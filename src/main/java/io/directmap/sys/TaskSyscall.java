package io.directmap.sys;

/** STUB (not committed). */
public final class TaskSyscall {
    public sealed interface Access {
        record Open(boolean forWrite, boolean truncates) implements Access {}
    }
}
