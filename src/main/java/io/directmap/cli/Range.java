package io.directmap.cli;

import io.directmap.pci.Topology;
import java.io.IOException;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** START:END from the command line; either side may be empty (0 and the end of the file), sizes like 4M allowed. */
record Range(Long start, Long end) {
    /** No --range: the whole file. */
    static final Range WHOLE = new Range(null, null);

    /** picocli's converter: a text that is not START:END is invalid input, reported with the option's name (exit 2). */
    static final class Converter implements ITypeConverter<Range> {
        @Override
        public Range convert(String text) {
            int colon = text.indexOf(':');
            if (colon < 0) throw new TypeConversionException("'" + text + "' must be START:END (for example 0:4M or 1M:)");
            return new Range(bound(text.substring(0, colon), text), bound(text.substring(colon + 1), text));
        }

        private static Long bound(String s, String whole) {
            if (s.isBlank()) return null;
            boolean negative = s.strip().startsWith("-");
            try {
                long v = Topology.parseSize(negative ? s.strip().substring(1) : s, "");
                return negative ? -v : v;
            } catch (IOException e) {
                throw new TypeConversionException("'" + whole + "': '" + s + "' is not a byte offset (examples: 4096, 4M, 1G)");
            }
        }
    }
}
