using System.Diagnostics.Metrics;
using System.Text;
using Lodestar.AspNetCore.Metrics;
using Lodestar.AspNetCore.Metrics.Internal;
using Lodestar.AspNetCore.Tests.Infrastructure;
using Lodestar.Testing;

namespace Lodestar.AspNetCore.Tests.Metrics;

public sealed class PrometheusExporterTests
{
    [Fact]
    public async Task WriteAsync_OddLabelValuesAndEveryInstrumentKind_ParsesBackStrictlyWithTheSameValues()
    {
        // Arrange
        var meterName = "Lodestar.Tests." + Guid.NewGuid().ToString("N");
        using var meter = new Meter(meterName);
        var options = new PrometheusExporterOptions();
        options.Meters.Add(meterName);
        using var exporter = new PrometheusExporter(options);
        var counter = meter.CreateCounter<long>("test.requests", "{request}", "Requests with a \\ backslash\nand a new line.");
        var upDown = meter.CreateUpDownCounter<int>("test.active", "{request}");
        var histogram = meter.CreateHistogram<double>("test.latency", "s", "Latency.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.1, 1] });
        var bytes = meter.CreateHistogram<long>("test.size", "By");
        meter.CreateObservableGauge("test.endpoints", () => new Measurement<int>(3, new KeyValuePair<string, object?>("service", "orders")), "{endpoint}");
        meter.CreateObservableCounter("test.cpu", () => 12.5, "s");
        string[] oddValues = ["plain", "back\\slash", "quo\"te", "new\nline", "all \\\"\n of them", "ünïcödé ✓", "", "trailing\\"];

        // Act
        foreach (var value in oddValues)
        {
            counter.Add(2, new KeyValuePair<string, object?>("lodestar.endpoint", value), new KeyValuePair<string, object?>("outcome", "ok"));
        }

        upDown.Add(5);
        upDown.Add(-2);
        foreach (var v in new[] { 0.005, 0.01, 0.05, 0.5, 0.5, 3, 100 })
        {
            histogram.Record(v, new KeyValuePair<string, object?>("service", "orders"));
        }

        histogram.Record(0.2, new KeyValuePair<string, object?>("service", "pay\"ments"));
        bytes.Record(512);
        using var stream = new MemoryStream();
        await exporter.WriteAsync(stream);
        var text = Encoding.UTF8.GetString(stream.ToArray());
        var families = ExpositionParser.Parse(text);

        // Assert
        var requests = families["test_requests_total"];
        Assert.Equal("counter", requests.Type);
        Assert.Equal("Requests with a \\ backslash\nand a new line.", requests.Help);
        Assert.Equal(oddValues.Order(StringComparer.Ordinal), requests.Samples.Select(s => s.Labels["lodestar_endpoint"]).Order(StringComparer.Ordinal));
        Assert.All(requests.Samples, s => Assert.Equal(2, s.Value));

        Assert.Equal("gauge", families["test_active"].Type);
        Assert.Equal(3, families["test_active"].Samples.Single().Value);

        var latency = families["test_latency_seconds"];
        Assert.Equal("histogram", latency.Type);
        var orders = latency.Samples.Where(s => s.Labels.GetValueOrDefault("service") == "orders").ToList();
        Assert.Equal([2, 3, 5, 7], orders.Where(s => s.Name.EndsWith("_bucket", StringComparison.Ordinal)).Select(s => s.Value));
        Assert.Equal(["0.01", "0.1", "1", "+Inf"], orders.Where(s => s.Name.EndsWith("_bucket", StringComparison.Ordinal)).Select(s => s.Labels["le"]));
        Assert.Equal(104.065, orders.Single(s => s.Name == "test_latency_seconds_sum").Value, 9);
        Assert.Equal(7, orders.Single(s => s.Name == "test_latency_seconds_count").Value);
        Assert.Contains(latency.Samples, s => s.Labels.GetValueOrDefault("service") == "pay\"ments" && s.Name == "test_latency_seconds_count" && s.Value == 1);

        Assert.Equal("histogram", families["test_size_bytes"].Type);
        Assert.Equal(3, families["test_endpoints"].Samples.Single().Value);
        Assert.Equal("orders", families["test_endpoints"].Samples.Single().Labels["service"]);
        Assert.Equal("counter", families["test_cpu_seconds_total"].Type);
        Assert.Equal(12.5, families["test_cpu_seconds_total"].Samples.Single().Value);
    }

    [Fact]
    public async Task Record_SeriesSeenBefore_AllocatesNothingAndCountsEveryMeasurementOnce()
    {
        // Arrange: tag values boxed once, as an instrumented caller holding its tags would pass them.
        var meterName = "Lodestar.Tests." + Guid.NewGuid().ToString("N");
        using var meter = new Meter(meterName);
        var options = new PrometheusExporterOptions();
        options.Meters.Add(meterName);
        using var exporter = new PrometheusExporter(options);
        var counter = meter.CreateCounter<long>("test.requests");
        var histogram = meter.CreateHistogram<double>("test.duration", "s");
        KeyValuePair<string, object?>[] okTags = [new("service", "orders"), new("status", (object)200)];
        KeyValuePair<string, object?>[] failedTags = [new("service", "orders"), new("status", (object)503)];
        KeyValuePair<string, object?>[] reordered = [new("status", (object)200), new("service", "orders")];
        void RecordAll()
        {
            counter.Add(1, okTags[0], okTags[1]);
            counter.Add(1, failedTags[0], failedTags[1]);
            counter.Add(1, reordered[0], reordered[1]);
            histogram.Record(0.02, okTags[0], okTags[1]);
        }

        RecordAll(); // first sight of each tag list builds its label text

        // Act: the least of up to three rounds of 1,000 (see ThreadAllocation.Least): an allocating path fails every round.
        var (allocated, rounds) = ThreadAllocation.Least(() =>
        {
            for (var i = 0; i < 1_000; i++)
            {
                RecordAll();
            }
        });

        using var stream = new MemoryStream();
        await exporter.WriteAsync(stream);
        var families = ExpositionParser.Parse(Encoding.UTF8.GetString(stream.ToArray()));

        // Assert: one series per label set, whatever the tag order, and every measurement counted.
        Assert.Equal(0, allocated);
        var requests = families["test_requests_total"].Samples;
        Assert.Equal(2, requests.Count);
        var recorded = 1 + (1_000 * rounds);
        Assert.Equal(2 * recorded, requests.Single(s => s.Labels["status"] == "200").Value);
        Assert.Equal(recorded, requests.Single(s => s.Labels["status"] == "503").Value);
        Assert.Equal(recorded, families["test_duration_seconds"].Samples.Single(s => s.Name == "test_duration_seconds_count").Value);
    }

    [Fact]
    public void Collect_ObservableSeriesGone_IsNotExportedAnymore()
    {
        // Arrange
        var meterName = "Lodestar.Tests." + Guid.NewGuid().ToString("N");
        using var meter = new Meter(meterName);
        var options = new PrometheusExporterOptions();
        options.Meters.Add(meterName);
        using var exporter = new PrometheusExporter(options);
        var services = new List<string> { "orders", "payments" };
        meter.CreateObservableGauge("test.endpoints", () => services.Select(s => new Measurement<int>(1, new KeyValuePair<string, object?>("service", s))).ToArray());

        // Act
        var before = ExpositionParser.Parse(exporter.Collect())["test_endpoints"].Samples.Count;
        services.Remove("payments");
        var after = ExpositionParser.Parse(exporter.Collect())["test_endpoints"].Samples.Count;

        // Assert
        Assert.Equal(2, before);
        Assert.Equal(1, after);
    }

    [Fact]
    public void Collect_MoreLabelCombinationsThanTheLimit_KeepsOnlyTheLimit()
    {
        // Arrange
        var meterName = "Lodestar.Tests." + Guid.NewGuid().ToString("N");
        using var meter = new Meter(meterName);
        var options = new PrometheusExporterOptions { MaxSeriesPerInstrument = 3 };
        options.Meters.Add(meterName);
        using var exporter = new PrometheusExporter(options);
        var counter = meter.CreateCounter<long>("test.requests");

        // Act
        for (var i = 0; i < 10; i++)
        {
            counter.Add(1, new KeyValuePair<string, object?>("id", i));
        }

        // Assert
        Assert.Equal(3, ExpositionParser.Parse(exporter.Collect())["test_requests_total"].Samples.Count);
    }

    [Fact]
    public void Collect_MeterNotSelected_IsNotExported()
    {
        // Arrange
        var meterName = "Lodestar.Tests." + Guid.NewGuid().ToString("N");
        using var meter = new Meter(meterName);
        using var exporter = new PrometheusExporter();
        meter.CreateCounter<long>("test.unselected").Add(1);

        // Act
        var families = ExpositionParser.Parse(exporter.Collect());

        // Assert
        Assert.DoesNotContain("test_unselected_total", families.Keys);
    }

    [Theory]
    [InlineData("lodestar.client.attempts", "{attempt}", true, "lodestar_client_attempts_total")]
    [InlineData("lodestar.client.attempt.duration", "s", false, "lodestar_client_attempt_duration_seconds")]
    [InlineData("lodestar.endpoints", "{endpoint}", false, "lodestar_endpoints")]
    [InlineData("http.server.request.duration", "s", false, "http_server_request_duration_seconds")]
    [InlineData("kestrel.connection.duration", "s", false, "kestrel_connection_duration_seconds")]
    [InlineData("process.memory", "By", false, "process_memory_bytes")]
    [InlineData("net.io", "By/s", false, "net_io_bytes_per_second")]
    [InlineData("already.seconds", "s", false, "already_seconds")]
    [InlineData("jobs.total", "{job}", true, "jobs_total")]
    [InlineData("9lives-and-dashes", "1", false, "_9lives_and_dashes")]
    public void MetricName_InstrumentNameAndUnit_FollowsTheOpenTelemetryMapping(string name, string unit, bool counter, string expected)
        => Assert.Equal(expected, PrometheusText.MetricName(name, unit, counter));
}
