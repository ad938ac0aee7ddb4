using Lodestar.Http;
using Lodestar.Resilience.Internal;
using Lodestar.Tests.Resilience;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Tests.Health;

/// <summary>Two clients of one service, each with its own outlier-detection settings, each seeing them honoured.</summary>
public sealed class TwoClientsTests
{
    private const string Bad = "127.0.0.1:9401";
    private const string Good = "127.0.0.1:9402";

    [Fact]
    public async Task TwoClients_DifferentOutlierSettings_EachClientHonoursItsOwn()
    {
        // Arrange: "strict" ejects after 2 errors in a row, "lenient" after 50; one endpoint always answers 500.
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Authority == Bad ? 500 : 200));
        await using var host = Host(handler,
            strict: o => o.OutlierDetection.ConsecutiveServerErrors = 2,
            lenient: o => o.OutlierDetection.ConsecutiveServerErrors = 50);
        var strict = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("strict");
        var lenient = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("lenient");

        // Act: ten requests through each client (round robin: five reach the bad endpoint unless it is ejected).
        for (var i = 0; i < 10; i++)
        {
            (await strict.GetAsync("http://orders/x")).Dispose();
        }

        var badCallsAfterStrict = handler.Calls.Count(c => c.Authority == Bad);
        for (var i = 0; i < 10; i++)
        {
            (await lenient.GetAsync("http://orders/x")).Dispose();
        }

        var badCallsByLenient = handler.Calls.Count(c => c.Authority == Bad) - badCallsAfterStrict;

        // Assert: strict ejected the bad endpoint after two errors; lenient kept sending to it.
        var strictState = (await host.FindStateAsync(Bad, "strict"))!;
        var lenientState = (await host.FindStateAsync(Bad, "lenient"))!;
        Assert.NotSame(strictState, lenientState);
        Assert.True(strictState.IsEjected);
        Assert.Equal(2, badCallsAfterStrict);
        Assert.False(lenientState.IsEjected);
        Assert.Equal(5, badCallsByLenient);
        Assert.Equal(2, (await host.GetBalancerAsync("strict")).Stage.Settings.Outlier.ConsecutiveServerErrors);
        Assert.Equal(50, (await host.GetBalancerAsync("lenient")).Stage.Settings.Outlier.ConsecutiveServerErrors);
    }

    [Fact]
    public async Task TwoClients_DifferentSettings_LogLineNamesBothClientsAndTheDifference()
    {
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(200));
        await using var host = Host(handler,
            strict: o => o.OutlierDetection.ConsecutiveServerErrors = 2,
            lenient: o => o.OutlierDetection.ConsecutiveServerErrors = 50);

        (await host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("strict").GetAsync("http://orders/x")).Dispose();
        (await host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("lenient").GetAsync("http://orders/x")).Dispose();

        var line = Assert.Single(host.Logs.Entries, e => e.EventId.Name == "SeparateHealthStage");
        Assert.Contains("lenient", line.Message, StringComparison.Ordinal);
        Assert.Contains("strict", line.Message, StringComparison.Ordinal);
        Assert.Contains("OutlierDetection.ConsecutiveServerErrors: 50 vs 2", line.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoClients_SameEffectiveSettings_ShareOneStageAndItsEjections()
    {
        // Arrange: both clients set the same value, one through a different property path than the service default.
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Authority == Bad ? 500 : 200));
        await using var host = Host(handler,
            strict: o => o.OutlierDetection.ConsecutiveServerErrors = 2,
            lenient: o => o.OutlierDetection.ConsecutiveServerErrors = 2);
        var first = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("strict");

        // Act
        for (var i = 0; i < 4; i++)
        {
            (await first.GetAsync("http://orders/x")).Dispose();
        }

        // Assert: the second client sees the ejection the first one caused.
        var strict = await host.GetBalancerAsync("strict");
        var lenient = await host.GetBalancerAsync("lenient");
        Assert.Same(strict.Stage, lenient.Stage);
        Assert.True((await host.FindStateAsync(Bad, "lenient"))!.IsEjected);
        Assert.DoesNotContain(host.Logs.Entries, e => e.EventId.Name == "SeparateHealthStage");
    }

    private static ResilienceTestHost Host(ScriptedHandler handler, Action<LodestarClientOptions> strict, Action<LodestarClientOptions> lenient)
    {
        var host = ResilienceTestHost.Create(primaryHandler: handler, services: services =>
        {
            services.AddHttpClient("strict").AddLodestar(o =>
            {
                o.MaxAttempts = 1;
                strict(o);
            }).ConfigurePrimaryHttpMessageHandler(() => handler);
            services.AddHttpClient("lenient").AddLodestar(o =>
            {
                o.MaxAttempts = 1;
                lenient(o);
            }).ConfigurePrimaryHttpMessageHandler(() => handler);
        });
        host.SetEndpoints(Bad, Good);
        return host;
    }
}
