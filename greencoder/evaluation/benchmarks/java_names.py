"""Public top-level types of the JDK 17 packages the benchmarks' drivers use, by simple name.

A driver compiled next to the solution imports each JDK type it names with a single-type import
(`import java.util.Arrays;`), which shadows any same-named class the solution declares in the
default package (JLS 6.4.1); an on-demand import (`java.util.*`) would not. Generated from the
`jrt:/` image of OpenJDK 17 (public, non-nested classes of java.base); a name missing here only
means that name is not protected.
"""

_PACKAGES = {
    "java.lang": (
        "AbstractMethodError Appendable ArithmeticException ArrayIndexOutOfBoundsException "
        "ArrayStoreException AssertionError AutoCloseable Boolean BootstrapMethodError Byte CharSequence "
        "Character Class ClassCastException ClassCircularityError ClassFormatError ClassLoader "
        "ClassNotFoundException ClassValue CloneNotSupportedException Cloneable Comparable Compiler "
        "Deprecated Double Enum EnumConstantNotPresentException Error Exception ExceptionInInitializerError "
        "Float FunctionalInterface IllegalAccessError IllegalAccessException IllegalArgumentException "
        "IllegalCallerException IllegalMonitorStateException IllegalStateException "
        "IllegalThreadStateException IncompatibleClassChangeError IndexOutOfBoundsException "
        "InheritableThreadLocal InstantiationError InstantiationException Integer InternalError "
        "InterruptedException Iterable LayerInstantiationException LinkageError Long Math Module ModuleLayer "
        "NegativeArraySizeException NoClassDefFoundError NoSuchFieldError NoSuchFieldException "
        "NoSuchMethodError NoSuchMethodException NullPointerException Number NumberFormatException Object "
        "OutOfMemoryError Override Package Process ProcessBuilder ProcessHandle Readable Record "
        "ReflectiveOperationException Runnable Runtime RuntimeException RuntimePermission SafeVarargs "
        "SecurityException SecurityManager Short StackOverflowError StackTraceElement StackWalker StrictMath "
        "String StringBuffer StringBuilder StringIndexOutOfBoundsException SuppressWarnings System Thread "
        "ThreadDeath ThreadGroup ThreadLocal Throwable TypeNotPresentException UnknownError "
        "UnsatisfiedLinkError UnsupportedClassVersionError UnsupportedOperationException VerifyError "
        "VirtualMachineError Void "
    ),
    "java.util": (
        "AbstractCollection AbstractList AbstractMap AbstractQueue AbstractSequentialList AbstractSet "
        "ArrayDeque ArrayList Arrays Base64 BitSet Calendar Collection Collections Comparator "
        "ConcurrentModificationException Currency Date Deque Dictionary DoubleSummaryStatistics "
        "DuplicateFormatFlagsException EmptyStackException EnumMap EnumSet Enumeration EventListener "
        "EventListenerProxy EventObject FormatFlagsConversionMismatchException Formattable FormattableFlags "
        "Formatter FormatterClosedException GregorianCalendar HashMap HashSet Hashtable HexFormat "
        "IdentityHashMap IllegalFormatCodePointException IllegalFormatConversionException "
        "IllegalFormatException IllegalFormatFlagsException IllegalFormatPrecisionException "
        "IllegalFormatWidthException IllformedLocaleException InputMismatchException IntSummaryStatistics "
        "InvalidPropertiesFormatException Iterator LinkedHashMap LinkedHashSet LinkedList List ListIterator "
        "ListResourceBundle Locale LongSummaryStatistics Map MissingFormatArgumentException "
        "MissingFormatWidthException MissingResourceException NavigableMap NavigableSet "
        "NoSuchElementException Objects Observable Observer Optional OptionalDouble OptionalInt OptionalLong "
        "PrimitiveIterator PriorityQueue Properties PropertyPermission PropertyResourceBundle Queue Random "
        "RandomAccess ResourceBundle Scanner ServiceConfigurationError ServiceLoader Set SimpleTimeZone "
        "SortedMap SortedSet Spliterator Spliterators SplittableRandom Stack StringJoiner StringTokenizer "
        "TimeZone Timer TimerTask TooManyListenersException TreeMap TreeSet UUID "
        "UnknownFormatConversionException UnknownFormatFlagsException Vector WeakHashMap "
    ),
    "java.util.function": (
        "BiConsumer BiFunction BiPredicate BinaryOperator BooleanSupplier Consumer DoubleBinaryOperator "
        "DoubleConsumer DoubleFunction DoublePredicate DoubleSupplier DoubleToIntFunction "
        "DoubleToLongFunction DoubleUnaryOperator Function IntBinaryOperator IntConsumer IntFunction "
        "IntPredicate IntSupplier IntToDoubleFunction IntToLongFunction IntUnaryOperator LongBinaryOperator "
        "LongConsumer LongFunction LongPredicate LongSupplier LongToDoubleFunction LongToIntFunction "
        "LongUnaryOperator ObjDoubleConsumer ObjIntConsumer ObjLongConsumer Predicate Supplier "
        "ToDoubleBiFunction ToDoubleFunction ToIntBiFunction ToIntFunction ToLongBiFunction ToLongFunction "
        "UnaryOperator "
    ),
    "java.util.stream": (
        "BaseStream Collector Collectors DoubleStream IntStream LongStream Stream StreamSupport "
    ),
    "java.math": (
        "BigDecimal BigInteger MathContext RoundingMode "
    ),
}

JDK_TYPES: dict[str, str] = {name: package for package, names in _PACKAGES.items() for name in names.split()}
