using System.Net;
using Lodestar.Http;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace Lodestar.Tests.Resilience;

/// <summary>
/// Microsoft.Extensions.Http.Resilience's standard handler beside Lodestar, wired as docs/resilience.md recommends and
/// as it warns against: the attempts that reach three failing backends for one request.
/// </summary>
public sealed class StandardResilienceHandlerTests
{
    public enum Wiring
    {
        /// <summary>The standard handler outside Lodestar, its retry switched off: Lodestar alone retries.</summary>
        Recommended,

        /// <summary>
        /// The standard handler with its defaults outside Lodestar: its first try runs Lodestar's attempts, and its
        /// retries re-send the request Lodestar already rewrote to the last endpoint, which therefore gets them all.
        /// </summary>
        DefaultsOutside,

        /// <summary>The standard handler with its defaults inside Lodestar: each Lodestar attempt is retried on the same endpoint.</summary>
        DefaultsInside,
    }

    [Theory]
    [InlineData(Wiring.Recommended, 3, new[] { 1, 1, 1 })]
    [InlineData(Wiring.DefaultsOutside, 6, new[] { 1, 1, 4 })]
    [InlineData(Wiring.DefaultsInside, 12, new[] { 4, 4, 4 })]
    public async Task SendAsync_EveryBackendFails_AttemptsReachingBackendsDependOnWiring(Wiring wiring, int expectedAttempts, int[] perBackend)
    {
        // Arrange: three instances that answer 503 (retryable for both layers).
        var backends = new List<TestBackend>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var backend = await TestBackend.StartAsync("orders-" + i);
                backend.Status = 503;
                backends.Add(backend);
            }

            await using var provider = BuildProvider(wiring, backends.Select(b => b.Address).ToArray());
            var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("orders");

            // Act
            using var response = await client.GetAsync(new Uri("http://orders/items")).WaitAsync(TimeSpan.FromSeconds(30));

            // Assert: the last answer comes back; the count is what the backends saw.
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal(expectedAttempts, backends.Sum(b => b.Requests));
            Assert.Equal(perBackend, backends.Select(b => b.Requests).Order());
        }
        finally
        {
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }
    }

    [Fact]
    public void Docs_RecommendedWiring_IsTheOneTested()
    {
        var docs = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "resilience.md"));

        Assert.Contains("""
                .AddStandardResilienceHandler(o => o.Retry.ShouldHandle = static _ => PredicateResult.False())
                .AddLodestar(
            """, docs, StringComparison.Ordinal);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Lodestar.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Lodestar.slnx) was not found above the test's folder.");
    }

    private static ServiceProvider BuildProvider(Wiring wiring, string[] endpoints)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder()
            .AddInMemoryCollection(endpoints.Select((e, i) => new KeyValuePair<string, string?>($"Lodestar:Services:orders:Endpoints:{i}", e)))
            .Build());
        var client = services.AddHttpClient("orders");
        switch (wiring)
        {
            case Wiring.Recommended:
                // As docs/resilience.md shows: the standard handler first (outermost), its retry off; Lodestar retries.
                client.AddStandardResilienceHandler(o => o.Retry.ShouldHandle = static _ => PredicateResult.False());
                client.AddLodestar(ConfigureLodestar);
                break;
            case Wiring.DefaultsOutside:
                client.AddStandardResilienceHandler(NoRetryDelay);
                client.AddLodestar(ConfigureLodestar);
                break;
            default:
                client.AddLodestar(ConfigureLodestar);
                client.AddStandardResilienceHandler(NoRetryDelay);
                break;
        }

        return services.BuildServiceProvider();
    }

    // Short Lodestar backoffs and no Polly delay keep the test quick; neither changes how many attempts are made.
    private static void ConfigureLodestar(LodestarClientOptions options)
    {
        options.MaxAttempts = 3;
        options.Retry.BackoffBase = TimeSpan.FromMilliseconds(1);
        options.Retry.BackoffMax = TimeSpan.FromMilliseconds(1);
    }

    private static void NoRetryDelay(HttpStandardResilienceOptions options) => options.Retry.Delay = TimeSpan.Zero;
}
