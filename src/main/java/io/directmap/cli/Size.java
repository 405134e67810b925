package io.directmap.cli;

import io.directmap.pci.Topology;
import java.io.IOException;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** A byte count from the command line as it was written (4096, 64K, 8M, 1G; never negative) and its value. */
record Size(String text, long bytes) {
    @Override
    public String toString() {
        return text;
    }

    /** picocli's converter: a text that is not a size is invalid input, reported with the option's name (exit 2). */
    static final class Converter implements ITypeConverter<Size> {
        @Override
        public Size convert(String text) {
            try {
                return new Size(text, Topology.parseSize(text, ""));
            } catch (IOException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }
}
