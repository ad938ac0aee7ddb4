using Lodestar.AspNetCore.Metrics;
using Lodestar.AspNetCore.Tests.Infrastructure;
using Lodestar.Diagnostics.Internal;
using Lodestar.Discovery;
using Lodestar.Discovery.Internal;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using System.Diagnostics.Metrics;

namespace Lodestar.AspNetCore.Tests.Diagnostics;

public sealed class DiscoveryMetricsTests
{
    [Fact]
    public async Task EndpointWatcher_SourceUpdatesFailsAndRestarts_RecordsUpdatesErrorsReconnectsAndGauges()
    {
        // Arrange
        await using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meterFactory = services.GetRequiredService<IMeterFactory>();
        using var exporter = new PrometheusExporter(new PrometheusExporterOptions(), meterFactory);
        var metrics = new LodestarMetrics(meterFactory);
        var clock = TimeProvider.System;
        var source = new ScriptedSource();
        await using var watcher = new EndpointWatcher("orders", "scripted", source, clock, NullLogger.Instance, metrics);

        // Act
        watcher.Start();
        await Eventually.TrueAsync(() => source.Runs >= 2, TimeSpan.FromSeconds(10), "the source is restarted after it throws");
        var families = ExpositionParser.Parse(exporter.Collect());

        // Assert
        static double Value(IReadOnlyDictionary<string, ExpositionParser.Family> f, string name) => f[name].Samples.Single(s => s.Labels["lodestar_source"] == "scripted").Value;
        Assert.True(Value(families, "lodestar_discovery_updates_total") >= 2, "two different sets were published");
        Assert.True(Value(families, "lodestar_discovery_errors_total") >= 2, "the reported error and the crash");
        Assert.True(Value(families, "lodestar_discovery_reconnects_total") >= 1);
        Assert.Equal(1, Value(families, "lodestar_endpoints"));
        Assert.InRange(Value(families, "lodestar_discovery_staleness_seconds"), 0, 60);
    }

    private sealed class ScriptedSource : IEndpointSource
    {
        private int _runs;

        public int Runs => Volatile.Read(ref _runs);

        public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _runs) > 1)
            {
                // After the restart: stay up with the last set, as a healthy watch does.
                await Task.Delay(Timeout.Infinite, cancellationToken);
                return;
            }

            observer.OnEndpoints([DiscoveredEndpoint.Create("10.0.0.1", 80), DiscoveredEndpoint.Create("10.0.0.2", 80)]);
            observer.OnEndpoints([DiscoveredEndpoint.Create("10.0.0.1", 80)]);
            observer.OnError(new HttpRequestException("registry unavailable"));
            throw new InvalidOperationException("watch broke");
        }
    }
}
