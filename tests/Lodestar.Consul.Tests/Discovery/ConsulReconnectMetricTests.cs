using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Consul.Tests.Discovery;

/// <summary><c>lodestar.discovery.reconnects</c> for the Consul source, through the real wiring (AddLodestar().AddConsul()).</summary>
public sealed class ConsulReconnectMetricTests
{
    private const string HealthPath = "/v1/health/service/orders";
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Watch_BlockingQueryConnectionCutThreeTimes_CountsExactlyThreeReconnectsAndNoneForNormalRounds()
    {
        // Arrange: a short wait so that many blocking rounds end normally (wait elapsed, nothing changed) between cuts.
        const int Cuts = 3;
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLodestar().AddConsul(o =>
        {
            o.Address = agent.Address;
            o.WaitTime = TimeSpan.FromMilliseconds(150);
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(20);
            o.Backoff.MaxDelay = TimeSpan.FromMilliseconds(100);
        });
        await using var provider = services.BuildServiceProvider();
        var meterFactory = provider.GetRequiredService<IMeterFactory>();
        var reconnects = new ConcurrentQueue<(long Value, string? Service, string? Source)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "lodestar.discovery.reconnects" && ReferenceEquals(instrument.Meter.Scope, meterFactory))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? service = null, source = null;
            foreach (var tag in tags)
            {
                service = tag.Key == "lodestar.service" ? tag.Value as string : service;
                source = tag.Key == "lodestar.source" ? tag.Value as string : source;
            }

            reconnects.Enqueue((value, service, source));
        });
        listener.Start();
        var errors = new ConcurrentQueue<Exception>();
        using var watch = provider.GetRequiredService<IEndpointResolver>().Watch("orders", "consul", _ => { }, errors.Enqueue);

        // Act: cut the parked blocking query's connection, each time after at least two rounds that ended normally.
        var cuts = 0;
        while (cuts < Cuts)
        {
            var rounds = BlockingQueries(agent);
            await Eventually.TrueAsync(() => BlockingQueries(agent) >= rounds + 2 && agent.ParkedQueries == 1, s_timeout, "two more normal rounds, then a parked query");
            cuts += agent.CutParkedQueries();
        }

        var afterCuts = BlockingQueries(agent);
        await Eventually.TrueAsync(() => BlockingQueries(agent) >= afterCuts + 3, s_timeout, "three more normal rounds after the last cut");

        // Assert
        Assert.Equal(Cuts, reconnects.Sum(r => r.Value));
        Assert.All(reconnects, r => Assert.Equal(("orders", "consul"), (r.Service, r.Source)));
        Assert.Equal(Cuts, errors.Count);
        Assert.True(BlockingQueries(agent) >= (2 * Cuts) + 3, "normal blocking rounds happened and were not counted");
    }

    private static int BlockingQueries(FakeConsulAgent agent) => agent.Requests.Count(r => r.Path == HealthPath && r.Index is not null);
}
