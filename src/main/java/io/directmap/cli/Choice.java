package io.directmap.cli;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * picocli's converter for an enum option: a constant by its lower-case name (refuse, learn, ext4),
 * in any case; anything else is invalid input that lists the names (exit 2).
 */
final class Choice<E extends Enum<E>> implements ITypeConverter<E> {
    private final Class<E> type;

    Choice(Class<E> type) {
        this.type = type;
    }

    @Override
    public E convert(String text) {
        for (E e : type.getEnumConstants()) {
            if (name(e).equalsIgnoreCase(text)) return e;
        }
        throw new TypeConversionException("'" + text + "' is not one of "
                + Arrays.stream(type.getEnumConstants()).map(Choice::name).collect(Collectors.joining(", ")));
    }

    /** The constant's name on the command line: FALLBACK_ONLY is fallback-only. */
    static String name(Enum<?> e) {
        return e.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }
}
