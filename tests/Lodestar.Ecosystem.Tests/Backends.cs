using Lodestar.Testing;

namespace Lodestar.Ecosystem.Tests;

/// <summary>A few Kestrel backends on loopback, stopped together.</summary>
internal sealed class Backends : IAsyncDisposable, IReadOnlyList<TestBackend>
{
    private readonly List<TestBackend> _backends;

    private Backends(List<TestBackend> backends) => _backends = backends;

    public int Count => _backends.Count;

    public TestBackend this[int index] => _backends[index];

    public static async Task<Backends> StartAsync(int count)
    {
        var backends = new List<TestBackend>();
        for (var i = 0; i < count; i++)
        {
            backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        return new Backends(backends);
    }

    public IEnumerator<TestBackend> GetEnumerator() => _backends.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public async ValueTask DisposeAsync()
    {
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }
}
