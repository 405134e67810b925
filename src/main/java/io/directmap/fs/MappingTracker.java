package io.directmap.fs;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The live device mappings of each inode, in an interval structure (ordered by start, with the
 * longest length seen bounding the search), so the file system finds exactly the mappings that
 * overlap a changed range.
 */
public final class MappingTracker {
    private static final class Intervals {
        final TreeMap<Long, List<DeviceMapping>> byStart = new TreeMap<>();
        long longest;
        int size;
    }

    private final Map<String, Intervals> byFile = new ConcurrentHashMap<>();

    void add(DeviceMapping m) {
        Intervals iv = byFile.computeIfAbsent(m.file().key(), k -> new Intervals());
        synchronized (iv) {
            iv.byStart.computeIfAbsent(m.start(), s -> new ArrayList<>(1)).add(m);
            iv.longest = Math.max(iv.longest, m.end() - m.start());
            iv.size++;
        }
    }

    void remove(DeviceMapping m) {
        Intervals iv = byFile.get(m.file().key());
        if (iv == null) return;
        synchronized (iv) {
            List<DeviceMapping> at = iv.byStart.get(m.start());
            if (at != null && at.remove(m)) {
                iv.size--;
                if (at.isEmpty()) iv.byStart.remove(m.start());
            }
        }
    }

    /** The live mappings of the inode of file that overlap [start, end). */
    public List<DeviceMapping> overlapping(OpenFile file, long start, long end) {
        return overlapping(file.key(), start, end);
    }

    List<DeviceMapping> overlapping(String key, long start, long end) {
        Intervals iv = byFile.get(key);
        if (iv == null) return List.of();
        List<DeviceMapping> out = new ArrayList<>();
        synchronized (iv) {
            long from = start - iv.longest < start ? Math.max(0, start - iv.longest) : 0;
            for (List<DeviceMapping> at : iv.byStart.subMap(from, true, end, false).values()) {
                for (DeviceMapping m : at) if (m.end() > start) out.add(m);
            }
        }
        return out;
    }

    /** Every live mapping, of every file. */
    public List<DeviceMapping> all() {
        List<DeviceMapping> out = new ArrayList<>();
        for (Intervals iv : byFile.values()) {
            synchronized (iv) {
                iv.byStart.values().forEach(out::addAll);
            }
        }
        return out;
    }

    public int size() {
        int n = 0;
        for (Intervals iv : byFile.values()) {
            synchronized (iv) {
                n += iv.size;
            }
        }
        return n;
    }
}
