package io.directmap.fs;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The live device mappings of each inode, so the file system can find (and, later, invalidate)
 * every mapping that overlaps a changed range. Per-file lists stay short: a mapping covers a
 * request, not a page.
 */
public final class MappingTracker {
    private final Map<String, List<DeviceMapping>> byFile = new ConcurrentHashMap<>();

    void add(DeviceMapping m) {
        byFile.computeIfAbsent(m.file().key(), k -> new ArrayList<>());
        synchronized (byFile.get(m.file().key())) {
            byFile.get(m.file().key()).add(m);
        }
    }

    void remove(DeviceMapping m) {
        List<DeviceMapping> list = byFile.get(m.file().key());
        if (list == null) return;
        synchronized (list) {
            list.remove(m);
        }
    }

    /** The live mappings of file that overlap [start, end). */
    public List<DeviceMapping> overlapping(OpenFile file, long start, long end) {
        List<DeviceMapping> list = byFile.get(file.key());
        if (list == null) return List.of();
        synchronized (list) {
            return list.stream().filter(m -> m.start() < end && start < m.end()).toList();
        }
    }

    /** Every live mapping, of every file. */
    public List<DeviceMapping> all() {
        List<DeviceMapping> out = new ArrayList<>();
        for (List<DeviceMapping> list : byFile.values()) {
            synchronized (list) {
                out.addAll(list);
            }
        }
        return out;
    }
}
