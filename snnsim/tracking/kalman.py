"""Constant-velocity Kalman filter on (cx, cy, w, h), as TrackTrack uses it.

State x = (cx, cy, w, h, vcx, vcy, vw, vh); F adds each velocity to its coordinate once per
frame; H observes the first four entries. Noise is relative to the box size:

* initial covariance  P0 = diag(2w, 2h, 2w, 2h, 10w, 10h, 10w, 10h)^2 (TrackTrack's values,
  from the measured box);
* process noise       Q  = diag(w/20, h/20, w/20, h/20, w/160, h/160, w/160, h/160)^2,
  with w, h of the *predicted* state (sigma_pos 1/20, sigma_vel 1/160);
* measurement noise   R  = diag(w/20, h/20, w/20, h/20)^2 * (1 - score), w, h of the
  predicted state (TrackTrack's noise-scale-adaptive update: a confident detection is
  trusted more; the score is clipped to [0, 1]).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["KalmanFilter"]


class KalmanFilter:
    """Stateless filter: every method takes and returns (mean [8], covariance [8, 8])."""

    std_pos = 1.0 / 20.0
    std_vel = 1.0 / 160.0
    init_pos = 2.0
    init_vel = 10.0

    def __init__(self) -> None:
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)
        self.H = np.eye(4, 8)

    @staticmethod
    def _wh4(w: float, h: float) -> np.ndarray:
        return np.array([w, h, w, h], dtype=np.float64)

    def initiate(self, measurement) -> tuple[np.ndarray, np.ndarray]:
        """New track from a measured box (cx, cy, w, h); velocities start at 0."""
        z = np.asarray(measurement, dtype=np.float64).reshape(4)
        mean = np.concatenate([z, np.zeros(4)])
        wh = self._wh4(z[2], z[3])
        std = np.concatenate([self.init_pos * wh, self.init_vel * wh])
        return mean, np.diag(std ** 2)

    def process_noise(self, mean) -> np.ndarray:
        wh = self._wh4(mean[2], mean[3])
        return np.diag(np.concatenate([self.std_pos * wh, self.std_vel * wh]) ** 2)

    def measurement_noise(self, mean, score: float) -> np.ndarray:
        wh = self._wh4(mean[2], mean[3])
        return np.diag((self.std_pos * wh) ** 2) * (1.0 - float(np.clip(score, 0.0, 1.0)))

    def predict(self, mean, covariance) -> tuple[np.ndarray, np.ndarray]:
        mean = self.F @ np.asarray(mean, dtype=np.float64)
        covariance = self.F @ covariance @ self.F.T + self.process_noise(mean)
        return mean, covariance

    def project(self, mean, covariance, score: float) -> tuple[np.ndarray, np.ndarray]:
        """Predicted measurement and its covariance (S = H P H^T + R)."""
        return self.H @ mean, self.H @ covariance @ self.H.T + self.measurement_noise(mean, score)

    def update(self, mean, covariance, measurement, score: float) -> tuple[np.ndarray, np.ndarray]:
        """Correct with a measured box (cx, cy, w, h) of detection confidence ``score``."""
        z = np.asarray(measurement, dtype=np.float64).reshape(4)
        z_pred, S = self.project(mean, covariance, score)
        PHt = covariance @ self.H.T
        chol = scipy.linalg.cho_factor(S, lower=True, check_finite=False)
        gain = scipy.linalg.cho_solve(chol, PHt.T, check_finite=False).T  # K = P H^T S^-1
        mean = mean + gain @ (z - z_pred)
        covariance = covariance - gain @ S @ gain.T
        return mean, covariance
