using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Lodestar.AspNetCore.Metrics.Internal;

/// <summary>
/// Aggregates measurements from the selected meters with a <see cref="MeterListener"/>: sums for counters, last values
/// for gauges and observable instruments, explicit-bucket histograms, one series per label combination.
/// </summary>
/// <remarks>
/// Instruments with the same identity (meter, name, kind, unit), for example one per dependency-injection container
/// in a process, share one aggregate, as OpenTelemetry's SDK merges identical instruments. Synchronous measurements
/// arrive on any thread and update series with interlocked operations (histograms lock their own series);
/// observable instruments are only read during <see cref="Collect"/>, which is serialized.
/// </remarks>
internal sealed class MetricCollector : IDisposable
{
    // OpenTelemetry's default explicit bounds, and the seconds bounds ASP.NET Core advises for durations.
    private static readonly double[] s_defaultBounds = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];
    private static readonly double[] s_secondsBounds = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    private readonly HashSet<string> _meters;
    private readonly object? _scope;
    private readonly int _maxSeries;
    private readonly MeterListener _listener;
    private readonly ConcurrentDictionary<string, InstrumentState> _instruments = new(StringComparer.Ordinal);
    private readonly Lock _collectGate = new();

    public MetricCollector(IEnumerable<string> meters, int maxSeriesPerInstrument, object? scope)
    {
        _meters = new HashSet<string>(meters, StringComparer.Ordinal);
        _scope = scope;
        _maxSeries = maxSeriesPerInstrument;
        _listener = new MeterListener
        {
            InstrumentPublished = OnInstrumentPublished,
            MeasurementsCompleted = OnMeasurementsCompleted,
        };
        _listener.SetMeasurementEventCallback<byte>(static (i, v, t, s) => ((InstrumentState)s!).Record(v, t));
        _listener.SetMeasurementEventCallback<short>(static (i, v, t, s) => ((InstrumentState)s!).Record(v, t));
        _listener.SetMeasurementEventCallback<int>(static (i, v, t, s) => ((InstrumentState)s!).Record(v, t));
        _listener.SetMeasurementEventCallback<long>(static (i, v, t, s) => ((InstrumentState)s!).Record(v, t));
        _listener.SetMeasurementEventCallback<float>(static (i, v, t, s) => ((InstrumentState)s!).Record(v, t));
        _listener.SetMeasurementEventCallback<double>(static (i, v, t, s) => ((InstrumentState)s!).Record(v, t));
        _listener.SetMeasurementEventCallback<decimal>(static (i, v, t, s) => ((InstrumentState)s!).Record((double)v, t));
        _listener.Start();
    }

    /// <summary>Reads observable instruments and renders every series in the text exposition format.</summary>
    public string Collect()
    {
        lock (_collectGate)
        {
            foreach (var state in _instruments.Values)
            {
                if (state.IsObservable)
                {
                    // An observable series exists only while its callback reports it.
                    state.ClearSeries();
                }
            }

            _listener.RecordObservableInstruments();

            var sb = new StringBuilder(4096);
            var written = new HashSet<string>(StringComparer.Ordinal);
            foreach (var state in _instruments.Values.OrderBy(s => s.MetricName, StringComparer.Ordinal))
            {
                // Two identities may map to one Prometheus name ("a.b" and "a_b"): a family may appear only once.
                if (state.Series.IsEmpty || !written.Add(state.MetricName))
                {
                    continue;
                }

                state.Write(sb);
            }

            return sb.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private void OnInstrumentPublished(Instrument instrument, MeterListener listener)
    {
        if (!_meters.Contains(instrument.Meter.Name))
        {
            return;
        }

        // A meter from another container's IMeterFactory belongs to another app in this process.
        if (_scope is not null && instrument.Meter.Scope is not null && !ReferenceEquals(instrument.Meter.Scope, _scope))
        {
            return;
        }

        var kind = KindOf(instrument);
        if (kind is null)
        {
            return;
        }

        var identity = string.Join('\u001f', instrument.Meter.Name, instrument.Name, kind.Value.ToString(), instrument.Unit ?? "");
        var state = _instruments.AddOrUpdate(identity,
            static (_, arg) => new InstrumentState(arg.instrument, arg.kind, arg.self._maxSeries),
            static (_, existing, _) => existing.AddReference(),
            (instrument, kind: kind.Value, self: this));
        listener.EnableMeasurementEvents(instrument, state);
    }

    private void OnMeasurementsCompleted(Instrument instrument, object? state)
    {
        if (state is InstrumentState instrumentState && instrumentState.RemoveReference() == 0)
        {
            _instruments.TryRemove(new KeyValuePair<string, InstrumentState>(instrumentState.Identity, instrumentState));
        }
    }

    private static InstrumentKind? KindOf(Instrument instrument)
    {
        var type = instrument.GetType();
        if (!type.IsGenericType)
        {
            return null;
        }

        var definition = type.GetGenericTypeDefinition();
        if (definition == typeof(Counter<>))
        {
            return InstrumentKind.Counter;
        }

        if (definition == typeof(UpDownCounter<>))
        {
            return InstrumentKind.UpDownCounter;
        }

        if (definition == typeof(Histogram<>))
        {
            return InstrumentKind.Histogram;
        }

        if (definition == typeof(Gauge<>))
        {
            return InstrumentKind.Gauge;
        }

        if (definition == typeof(ObservableCounter<>))
        {
            return InstrumentKind.ObservableCounter;
        }

        if (definition == typeof(ObservableUpDownCounter<>))
        {
            return InstrumentKind.ObservableUpDownCounter;
        }

        if (definition == typeof(ObservableGauge<>))
        {
            return InstrumentKind.ObservableGauge;
        }

        return null;
    }

    private static double[] BoundsOf(Instrument instrument)
    {
        double[]? advised = instrument switch
        {
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries?.ToArray(),
            Histogram<float> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<short> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<byte> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            _ => null,
        };
        if (advised is { Length: > 0 })
        {
            var sorted = advised.Where(b => !double.IsNaN(b) && !double.IsInfinity(b)).Distinct().Order().ToArray();
            if (sorted.Length > 0)
            {
                return sorted;
            }
        }

        return instrument.Unit == "s" ? s_secondsBounds : s_defaultBounds;
    }

    private enum InstrumentKind
    {
        Counter,
        UpDownCounter,
        Histogram,
        Gauge,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    }

    private sealed class InstrumentState
    {
        private readonly InstrumentKind _kind;
        private readonly int _maxSeries;
        private readonly double[] _bounds;
        private readonly string? _help;
        private int _references = 1;

        public InstrumentState(Instrument instrument, InstrumentKind kind, int maxSeries)
        {
            _kind = kind;
            _maxSeries = maxSeries;
            Identity = string.Join('\u001f', instrument.Meter.Name, instrument.Name, kind.ToString(), instrument.Unit ?? "");
            var isCounter = kind is InstrumentKind.Counter or InstrumentKind.ObservableCounter;
            MetricName = PrometheusText.MetricName(instrument.Name, instrument.Unit, isCounter);
            _help = instrument.Description;
            _bounds = kind == InstrumentKind.Histogram ? BoundsOf(instrument) : [];
        }

        public string Identity { get; }

        public string MetricName { get; }

        public bool IsObservable => _kind is InstrumentKind.ObservableCounter or InstrumentKind.ObservableUpDownCounter or InstrumentKind.ObservableGauge;

        public ConcurrentDictionary<string, Series> Series { get; } = new(StringComparer.Ordinal);

        /// <summary>
        /// The series for tag lists seen before, in the order the caller passed them, found without allocating; the
        /// canonical label text is built only the first time a tag list is seen.
        /// </summary>
        private readonly ConcurrentDictionary<RecordedTags, Series> _seen = new(RecordedTagsComparer.Instance);

        private string TypeName => _kind switch
        {
            InstrumentKind.Counter or InstrumentKind.ObservableCounter => "counter",
            InstrumentKind.Histogram => "histogram",
            _ => "gauge",
        };

        public InstrumentState AddReference()
        {
            Interlocked.Increment(ref _references);
            return this;
        }

        public int RemoveReference() => Interlocked.Decrement(ref _references);

        public void ClearSeries()
        {
            _seen.Clear();
            Series.Clear();
        }

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var seen = _seen.GetAlternateLookup<ReadOnlySpan<KeyValuePair<string, object?>>>();
            if (!seen.TryGetValue(tags, out var series))
            {
                var labels = FormatLabels(tags);
                if (!Series.TryGetValue(labels, out series))
                {
                    if (Series.Count >= _maxSeries)
                    {
                        return;
                    }

                    series = Series.GetOrAdd(labels, static (l, bounds) => new Series(l, bounds.Length), _bounds);
                }

                // Several tag orders may name one series; the cache stays within a small multiple of the series cap.
                if (_seen.Count < _maxSeries * 4)
                {
                    seen.TryAdd(tags, series);
                }
            }

            switch (_kind)
            {
                case InstrumentKind.Counter:
                case InstrumentKind.UpDownCounter:
                    series.Add(value);
                    break;
                case InstrumentKind.Histogram when !double.IsNaN(value):
                    series.Observe(value, _bounds);
                    break;
                case InstrumentKind.Histogram:
                    break;
                default:
                    // Gauges and observable instruments report the current (for observable counters, cumulative) value.
                    series.Set(value);
                    break;
            }
        }

        public void Write(StringBuilder sb)
        {
            if (!string.IsNullOrEmpty(_help))
            {
                sb.Append("# HELP ").Append(MetricName).Append(' ');
                PrometheusText.AppendHelp(sb, _help);
                sb.Append('\n');
            }

            sb.Append("# TYPE ").Append(MetricName).Append(' ').Append(TypeName).Append('\n');
            foreach (var series in Series.Values.OrderBy(s => s.Labels, StringComparer.Ordinal))
            {
                if (_kind == InstrumentKind.Histogram)
                {
                    WriteHistogram(sb, series);
                }
                else
                {
                    WriteSample(sb, MetricName, series.Labels, null, PrometheusText.FormatDouble(series.Value));
                }
            }
        }

        private void WriteHistogram(StringBuilder sb, Series series)
        {
            var (buckets, sum, count) = series.Snapshot();
            long cumulative = 0;
            for (var i = 0; i < _bounds.Length; i++)
            {
                cumulative += buckets[i];
                WriteSample(sb, MetricName + "_bucket", series.Labels, PrometheusText.FormatDouble(_bounds[i]), cumulative.ToString(CultureInfo.InvariantCulture));
            }

            WriteSample(sb, MetricName + "_bucket", series.Labels, "+Inf", count.ToString(CultureInfo.InvariantCulture));
            WriteSample(sb, MetricName + "_sum", series.Labels, null, PrometheusText.FormatDouble(sum));
            WriteSample(sb, MetricName + "_count", series.Labels, null, count.ToString(CultureInfo.InvariantCulture));
        }

        private static void WriteSample(StringBuilder sb, string name, string labels, string? le, string value)
        {
            sb.Append(name);
            if (labels.Length > 0 || le is not null)
            {
                sb.Append('{').Append(labels);
                if (le is not null)
                {
                    if (labels.Length > 0)
                    {
                        sb.Append(',');
                    }

                    sb.Append("le=\"").Append(le).Append('"');
                }

                sb.Append('}');
            }

            sb.Append(' ').Append(value).Append('\n');
        }

        /// <summary>Renders tags as the inside of a label set, sorted by name; tags whose names collide after sanitizing are joined with <c>;</c>.</summary>
        private static string FormatLabels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.Length == 0)
            {
                return "";
            }

            var pairs = new List<(string Name, string Value)>(tags.Length);
            foreach (var tag in tags)
            {
                var name = PrometheusText.LabelName(tag.Key);
                var value = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
                if (name == "le")
                {
                    // "le" is reserved for histogram buckets.
                    name = "le_";
                }

                var existing = pairs.FindIndex(p => p.Name == name);
                if (existing >= 0)
                {
                    pairs[existing] = (name, pairs[existing].Value + ";" + value);
                }
                else
                {
                    pairs.Add((name, value));
                }
            }

            pairs.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
            var sb = new StringBuilder();
            foreach (var (name, value) in pairs)
            {
                if (sb.Length > 0)
                {
                    sb.Append(',');
                }

                sb.Append(name).Append("=\"");
                PrometheusText.AppendLabelValue(sb, value);
                sb.Append('"');
            }

            return sb.ToString();
        }
    }

    /// <summary>A copy of one tag list as a measurement carried it.</summary>
    private sealed class RecordedTags(KeyValuePair<string, object?>[] tags)
    {
        public KeyValuePair<string, object?>[] Tags { get; } = tags;
    }

    /// <summary>
    /// Compares tag lists by name (ordinal) and value (<see cref="object.Equals(object?, object?)"/>), in order, and
    /// lets a measurement's span of tags be looked up without copying it.
    /// </summary>
    private sealed class RecordedTagsComparer : IEqualityComparer<RecordedTags>, IAlternateEqualityComparer<ReadOnlySpan<KeyValuePair<string, object?>>, RecordedTags>
    {
        public static readonly RecordedTagsComparer Instance = new();

        public bool Equals(RecordedTags? x, RecordedTags? y)
            => ReferenceEquals(x, y) || (x is not null && y is not null && Equals(x.Tags, y));

        public int GetHashCode(RecordedTags obj) => GetHashCode(obj.Tags);

        public bool Equals(ReadOnlySpan<KeyValuePair<string, object?>> alternate, RecordedTags other)
        {
            var tags = other.Tags;
            if (alternate.Length != tags.Length)
            {
                return false;
            }

            for (var i = 0; i < tags.Length; i++)
            {
                if (!string.Equals(alternate[i].Key, tags[i].Key, StringComparison.Ordinal) || !Equals(alternate[i].Value, tags[i].Value))
                {
                    return false;
                }
            }

            return true;
        }

        public int GetHashCode(ReadOnlySpan<KeyValuePair<string, object?>> alternate)
        {
            var hash = new HashCode();
            foreach (var tag in alternate)
            {
                hash.Add(tag.Key, StringComparer.Ordinal);
                hash.Add(tag.Value);
            }

            return hash.ToHashCode();
        }

        public RecordedTags Create(ReadOnlySpan<KeyValuePair<string, object?>> alternate) => new(alternate.ToArray());
    }

    private sealed class Series
    {
        private readonly long[] _buckets;
        private readonly Lock _histogramGate = new();
        private double _value;
        private double _sum;
        private long _count;

        public Series(string labels, int boundCount)
        {
            Labels = labels;
            _buckets = boundCount == 0 ? [] : new long[boundCount + 1];
        }

        public string Labels { get; }

        public double Value => Volatile.Read(ref _value);

        public void Add(double delta)
        {
            var current = Volatile.Read(ref _value);
            while (true)
            {
                var seen = Interlocked.CompareExchange(ref _value, current + delta, current);
                if (seen.Equals(current))
                {
                    return;
                }

                current = seen;
            }
        }

        public void Set(double value) => Volatile.Write(ref _value, value);

        public void Observe(double value, double[] bounds)
        {
            // Prometheus buckets are "less than or equal": the first bound >= value.
            var index = Array.BinarySearch(bounds, value);
            if (index < 0)
            {
                index = ~index;
            }

            lock (_histogramGate)
            {
                _buckets[index]++;
                _sum += value;
                _count++;
            }
        }

        public (long[] Buckets, double Sum, long Count) Snapshot()
        {
            lock (_histogramGate)
            {
                return ((long[])_buckets.Clone(), _sum, _count);
            }
        }
    }
}
