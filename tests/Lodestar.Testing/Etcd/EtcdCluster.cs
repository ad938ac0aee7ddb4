using System.Diagnostics;

namespace Lodestar.Testing.Etcd;

/// <summary>
/// A real etcd cluster on loopback: several <see cref="EtcdServer"/> processes, each with its own name, data folder
/// and free client and peer ports, bootstrapped together (<c>--initial-cluster</c>, a token of their own,
/// <c>--initial-cluster-state new</c>). Each member can be killed, stopped and restarted on its own, and its
/// <see cref="EtcdServer"/> methods arrange and inspect the registry through that member.
/// </summary>
public sealed class EtcdCluster : IAsyncDisposable
{
    private static readonly TimeSpan s_readyTimeout = TimeSpan.FromSeconds(20);

    private EtcdCluster(EtcdServer[] members) => Members = members;

    /// <summary>Gets the members, in the order of their names (<c>m0</c>, <c>m1</c>...).</summary>
    public IReadOnlyList<EtcdServer> Members { get; }

    /// <summary>Gets every member's client URL joined by commas, the form of <c>EtcdOptions.Address</c> and etcdctl's <c>--endpoints</c>.</summary>
    public string ClientUrls => string.Join(",", Members.Select(m => m.ClientUrl));

    /// <summary>Gets the last lines every member wrote, for failure messages.</summary>
    public string RecentOutput => string.Join("\n", Members.Select(m => $"--- {m.Name} ---\n{m.RecentOutput}"));

    /// <summary>Starts a cluster of <paramref name="size"/> members and waits until a range succeeds on every one.</summary>
    /// <param name="size">The number of members, 1 or more.</param>
    /// <param name="extraArgs">More command-line flags for every member.</param>
    public static async Task<EtcdCluster> StartAsync(int size, params string[] extraArgs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        var cluster = new EtcdCluster(EtcdServer.CreateClusterMembers(size, extraArgs));
        try
        {
            // Started together: no member is healthy before a quorum of them elects a leader.
            foreach (var member in cluster.Members)
            {
                member.LaunchProcess();
            }

            await Task.WhenAll(cluster.Members.Select(m => m.WaitHealthyAsync()));
            await Task.WhenAll(cluster.Members.Select(WaitForRangeAsync));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Waits until every running member follows one leader that is itself running: after the leader is killed, until
    /// the others have elected a new one. Until then a write through a member may be forwarded to the dead leader and
    /// time out.
    /// </summary>
    public async Task WaitForLeaderAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var statuses = await Task.WhenAll(Members.Where(m => m.IsRunning).Select(m => m.StatusAsync()));
                var leader = statuses[0].LeaderId;
                if (leader != 0 && statuses.All(s => s.LeaderId == leader) && statuses.Any(s => s.MemberId == leader))
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or TaskCanceledException)
            {
            }

            if (deadline.Elapsed > s_readyTimeout)
            {
                throw new TimeoutException($"The running etcd members agreed on no running leader within {s_readyTimeout.TotalSeconds} s:\n{RecentOutput}");
            }

            await Task.Delay(50);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        foreach (var member in Members)
        {
            await member.DisposeAsync();
        }
    }

    private static async Task WaitForRangeAsync(EtcdServer member)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await member.RevisionAsync();
                return;
            }
            catch (Exception ex) when ((ex is HttpRequestException or InvalidOperationException or TaskCanceledException) && deadline.Elapsed < s_readyTimeout)
            {
                await Task.Delay(50);
            }
        }
    }
}
